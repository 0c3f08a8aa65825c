-- Whole-chain verifications asked for from the Audit page or
-- `POST /api/v1/audit/verify` (docs/audit.md), run by the `audit-verify` job one at
-- a time: `open_slot` is 1 while one is queued or running and NULL after, and being
-- unique it admits one open verification however many replicas are asked at once.
CREATE TABLE audit_verifications (
    id                   TEXT PRIMARY KEY NOT NULL,
    requested_by         TEXT NOT NULL,
    requested_at         TEXT NOT NULL,
    state                TEXT NOT NULL,
    started_at           TEXT,
    heartbeat_at         TEXT,
    finished_at          TEXT,
    head_seq             INTEGER NOT NULL DEFAULT 0,
    events_verified      INTEGER NOT NULL DEFAULT 0,
    grants_checked       INTEGER NOT NULL DEFAULT 0,
    checkpoints_verified INTEGER NOT NULL DEFAULT 0,
    first_broken_seq     INTEGER,
    problem              TEXT,
    summary              TEXT,
    open_slot            INTEGER UNIQUE
);
CREATE INDEX audit_verifications_requested ON audit_verifications (requested_at);
