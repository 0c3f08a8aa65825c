-- Policy: what the deciding policy records on a grant, break-glass reviews, and the
-- per-person lock that makes the per-user cap exact (SQLite). See docs/policy.md.

ALTER TABLE grants ADD COLUMN policy TEXT;
ALTER TABLE grants ADD COLUMN break_glass INTEGER NOT NULL DEFAULT 0 CHECK (break_glass IN (0, 1));
-- A request still pending at this time expires (the reaper moves it to 'expired').
ALTER TABLE grants ADD COLUMN expires_at TEXT;
ALTER TABLE grants ADD COLUMN review_required INTEGER NOT NULL DEFAULT 0 CHECK (review_required IN (0, 1));
ALTER TABLE grants ADD COLUMN reviewed_by TEXT;
ALTER TABLE grants ADD COLUMN reviewed_at TEXT;
ALTER TABLE grants ADD COLUMN review_comment TEXT;

CREATE INDEX grants_pending_expiry ON grants (state, expires_at);
CREATE INDEX grants_requester_policy ON grants (requester, policy, state);

-- One row per person who has asked for access. A new request first writes its row,
-- which takes SQLite's write lock (PostgreSQL: the row lock) before the live grants are
-- counted, so two simultaneous requests cannot both slip under max_active_per_user.
CREATE TABLE requester_locks (
    requester       TEXT PRIMARY KEY NOT NULL,
    last_request_at TEXT NOT NULL
);
