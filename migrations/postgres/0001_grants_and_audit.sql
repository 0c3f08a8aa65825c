-- Grants, approvals and the hash-chained audit log (PostgreSQL).
-- Ids are text (UUIDs as written by the application) so both backends share their SQL.

CREATE TABLE grants (
    id                      TEXT PRIMARY KEY NOT NULL,
    requester               TEXT NOT NULL,
    account_id              TEXT NOT NULL,
    permission_set          TEXT NOT NULL,
    justification           TEXT NOT NULL,
    ticket                  TEXT,
    duration_minutes        BIGINT NOT NULL CHECK (duration_minutes > 0),
    requested_start         TIMESTAMPTZ,
    approvals_required      BIGINT NOT NULL CHECK (approvals_required >= 0),
    state                   TEXT NOT NULL,
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL,
    activated_at            TIMESTAMPTZ,
    ends_at                 TIMESTAMPTZ,
    revoked_at              TIMESTAMPTZ,
    permission_set_session_seconds BIGINT,
    portal_session_seconds  BIGINT,
    real_end                TIMESTAMPTZ,
    failure_reason          TEXT,
    version                 BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX grants_state_ends_at ON grants (state, ends_at);
CREATE INDEX grants_requester_created ON grants (requester, created_at DESC, id DESC);
CREATE INDEX grants_created ON grants (created_at DESC, id DESC);
CREATE INDEX grants_target ON grants (requester, account_id, permission_set, state);

CREATE TABLE approvals (
    grant_id   TEXT NOT NULL REFERENCES grants (id),
    approver   TEXT NOT NULL,
    decision   TEXT NOT NULL CHECK (decision IN ('approve', 'deny')),
    comment    TEXT,
    decided_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (grant_id, approver)
);

CREATE TABLE audit_events (
    seq        BIGINT PRIMARY KEY NOT NULL,
    grant_id   TEXT,
    at         TIMESTAMPTZ NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    from_state TEXT,
    to_state   TEXT,
    reason     TEXT,
    details    TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);

CREATE INDEX audit_events_grant ON audit_events (grant_id, seq);

-- See the SQLite migration: appends lock and update this row first.
CREATE TABLE audit_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq  BIGINT NOT NULL,
    last_hash TEXT NOT NULL
);
INSERT INTO audit_head (id, last_seq, last_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
