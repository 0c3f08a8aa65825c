-- Notifications: the outbox (SQLite). See docs/operations.md, "Notifications".
--
-- Two tables, because "who receives it" needs the identity store and must not be asked
-- inside the transaction of a state change:
-- - notification_events is written in the same transaction as the state change that
--   causes it (or on its own for events that are not state changes, such as "ending in
--   10 minutes"); dedupe_key makes every enqueue idempotent;
-- - notification_deliveries has one row per (event, channel, recipient), written by the
--   worker when it fans an event out, and is delivered and retried row by row.

CREATE TABLE notification_events (
    id             TEXT PRIMARY KEY NOT NULL,   -- UUID; sent as the event id
    dedupe_key     TEXT NOT NULL UNIQUE,
    kind           TEXT NOT NULL,
    grant_id       TEXT REFERENCES grants (id),
    details        TEXT NOT NULL,               -- JSON
    created_at     TEXT NOT NULL,
    fanned_out_at  TEXT,                        -- NULL until the deliveries are written
    fan_out_after  TEXT NOT NULL,               -- backoff when recipients could not be resolved
    fan_out_error  TEXT
);

CREATE INDEX notification_events_unfanned ON notification_events (fanned_out_at, fan_out_after);

CREATE TABLE notification_deliveries (
    id              TEXT PRIMARY KEY NOT NULL,  -- UUID; sent as the idempotency key
    event_id        TEXT NOT NULL REFERENCES notification_events (id),
    channel         TEXT NOT NULL,              -- 'slack' | 'email' | 'webhook'
    recipient       TEXT NOT NULL,              -- an email address, or '*' for a channel-wide one
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'abandoned')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_owner     TEXT,
    lease_until     TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT,
    UNIQUE (event_id, channel, recipient)
);

CREATE INDEX notification_deliveries_due ON notification_deliveries (state, next_attempt_at);
