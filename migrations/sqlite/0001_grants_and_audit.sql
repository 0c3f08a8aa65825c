-- Grants, approvals and the hash-chained audit log (SQLite).
-- Times are RFC 3339 text in UTC, truncated to microseconds (as in PostgreSQL), so
-- text order is time order.

CREATE TABLE grants (
    id                      TEXT PRIMARY KEY NOT NULL,
    requester               TEXT NOT NULL,
    account_id              TEXT NOT NULL,
    permission_set          TEXT NOT NULL,
    justification           TEXT NOT NULL,
    ticket                  TEXT,
    duration_minutes        INTEGER NOT NULL CHECK (duration_minutes > 0),
    requested_start         TEXT,
    approvals_required      INTEGER NOT NULL CHECK (approvals_required >= 0),
    state                   TEXT NOT NULL,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    activated_at            TEXT,
    ends_at                 TEXT,
    revoked_at              TEXT,
    permission_set_session_seconds INTEGER,
    portal_session_seconds  INTEGER,
    real_end                TEXT,
    failure_reason          TEXT,
    version                 INTEGER NOT NULL DEFAULT 0
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
    decided_at TEXT NOT NULL,
    PRIMARY KEY (grant_id, approver)
);

CREATE TABLE audit_events (
    seq        INTEGER PRIMARY KEY NOT NULL,
    grant_id   TEXT,
    at         TEXT NOT NULL,
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

-- The chain's head: the last sequence number and hash. Appends update it first, which
-- serialises writers, and verification compares it with the last row, so deleting the
-- newest events is detected too.
CREATE TABLE audit_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq  INTEGER NOT NULL,
    last_hash TEXT NOT NULL
);
INSERT INTO audit_head (id, last_seq, last_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only: the application never updates or deletes an event. Someone with write
-- access to the file can drop these triggers; the hash chain then reports the change.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
