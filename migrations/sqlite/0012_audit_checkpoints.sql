-- Signed checkpoints of the audit chain (docs/audit.md): at sequence `seq` the chain's
-- hash was `hash` and it held `events` events; `signature` is the Ed25519 signature
-- over those facts and `at`, by the key whose public half is `public_key` (hex).
-- One per sequence number (the primary key), however many replicas write them.
CREATE TABLE audit_checkpoints (
    seq        INTEGER PRIMARY KEY NOT NULL,
    hash       TEXT NOT NULL,
    at         TEXT NOT NULL,
    events     INTEGER NOT NULL,
    public_key TEXT NOT NULL,
    signature  TEXT NOT NULL
);

-- Where each checkpoint was published (sink: 'file', 'log', …) and when. A
-- checkpoint without a row for a configured sink is published at the next pass.
CREATE TABLE audit_checkpoint_publications (
    seq          INTEGER NOT NULL REFERENCES audit_checkpoints (seq),
    sink         TEXT NOT NULL,
    published_at TEXT NOT NULL,
    PRIMARY KEY (seq, sink)
);
