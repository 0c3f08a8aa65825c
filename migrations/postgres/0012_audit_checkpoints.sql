-- See the SQLite migration: signed checkpoints of the audit chain, one per sequence
-- number, and where each was published.
CREATE TABLE audit_checkpoints (
    seq        BIGINT PRIMARY KEY NOT NULL,
    hash       TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    events     BIGINT NOT NULL,
    public_key TEXT NOT NULL,
    signature  TEXT NOT NULL
);

CREATE TABLE audit_checkpoint_publications (
    seq          BIGINT NOT NULL REFERENCES audit_checkpoints (seq),
    sink         TEXT NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (seq, sink)
);
