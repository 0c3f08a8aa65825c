-- See the SQLite migration: whole-chain verifications asked for on demand, one open
-- at a time (`open_slot`).
CREATE TABLE audit_verifications (
    id                   TEXT PRIMARY KEY NOT NULL,
    requested_by         TEXT NOT NULL,
    requested_at         TIMESTAMPTZ NOT NULL,
    state                TEXT NOT NULL,
    started_at           TIMESTAMPTZ,
    heartbeat_at         TIMESTAMPTZ,
    finished_at          TIMESTAMPTZ,
    head_seq             BIGINT NOT NULL DEFAULT 0,
    events_verified      BIGINT NOT NULL DEFAULT 0,
    grants_checked       BIGINT NOT NULL DEFAULT 0,
    checkpoints_verified BIGINT NOT NULL DEFAULT 0,
    first_broken_seq     BIGINT,
    problem              TEXT,
    summary              TEXT,
    open_slot            SMALLINT UNIQUE
);
CREATE INDEX audit_verifications_requested ON audit_verifications (requested_at);
