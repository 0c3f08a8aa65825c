-- Closing the sessions a revoked grant gave out (docs/sessions.md). Each revoked
-- grant records what became of them (sessions_close: pending, closed_scp,
-- closed_inline, or why not), when the deny took effect (sessions_closed_at), and
-- until when the deny must stand (sessions_until: revocation + portal session +
-- permission-set session, after which no session of the grant can exist).
ALTER TABLE grants ADD COLUMN sessions_close TEXT;
ALTER TABLE grants ADD COLUMN sessions_closed_at TIMESTAMPTZ;
ALTER TABLE grants ADD COLUMN sessions_until TIMESTAMPTZ;
CREATE INDEX grants_sessions_until ON grants (sessions_until) WHERE sessions_until IS NOT NULL;

-- The policies Timebox owns to carry the denies, with the text it last wrote to
-- each: a policy whose text in AWS is neither that nor the next one Timebox meant
-- to write was edited by someone else, and is reported instead of overwritten.
-- kind 'scp': a service control policy attached to the account `target`, one row
-- per slot. kind 'inline': the Timebox statements of the permission set `target`'s
-- inline policy (slot 0), the rest of that policy left as it is.
CREATE TABLE session_policies (
    kind       TEXT NOT NULL,
    target     TEXT NOT NULL,
    slot       BIGINT NOT NULL,
    policy_id  TEXT NOT NULL,
    content    TEXT NOT NULL,
    written_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, target, slot)
);

-- The organisation's management account, read with each catalog sync: SCPs do not
-- govern it, so grants there say their sessions cannot be closed by one.
ALTER TABLE catalog_sync ADD COLUMN management_account TEXT;
