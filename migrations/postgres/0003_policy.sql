-- Policy: what the deciding policy records on a grant, break-glass reviews, and the
-- per-person lock that makes the per-user cap exact (PostgreSQL). See docs/policy.md.

ALTER TABLE grants ADD COLUMN policy TEXT;
ALTER TABLE grants ADD COLUMN break_glass BOOLEAN NOT NULL DEFAULT FALSE;
-- A request still pending at this time expires (the reaper moves it to 'expired').
ALTER TABLE grants ADD COLUMN expires_at TIMESTAMPTZ;
ALTER TABLE grants ADD COLUMN review_required BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE grants ADD COLUMN reviewed_by TEXT;
ALTER TABLE grants ADD COLUMN reviewed_at TIMESTAMPTZ;
ALTER TABLE grants ADD COLUMN review_comment TEXT;

CREATE INDEX grants_pending_expiry ON grants (state, expires_at);
CREATE INDEX grants_requester_policy ON grants (requester, policy, state);

-- See the SQLite migration: a request locks its requester's row before counting.
CREATE TABLE requester_locks (
    requester       TEXT PRIMARY KEY NOT NULL,
    last_request_at TIMESTAMPTZ NOT NULL
);
