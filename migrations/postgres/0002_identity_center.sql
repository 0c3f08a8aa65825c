-- Identity Center: the cached catalog and the reaper's per-grant AWS work (PostgreSQL).
-- See docs/architecture.md, "The reaper".

CREATE TABLE catalog_permission_sets (
    arn                      TEXT PRIMARY KEY NOT NULL,
    name                     TEXT NOT NULL UNIQUE,
    description              TEXT,
    session_duration_seconds BIGINT NOT NULL,
    synced_at                TIMESTAMPTZ NOT NULL
);

-- Accounts and organisational units in one tree: kind is 'root', 'ou' or 'account'.
CREATE TABLE catalog_nodes (
    id        TEXT PRIMARY KEY NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('root', 'ou', 'account')),
    name      TEXT NOT NULL,
    parent_id TEXT,
    synced_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE catalog_sync (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    last_synced_at TIMESTAMPTZ NOT NULL
);

-- One row per grant the reaper has touched. The AWS request ids are written before
-- any status is polled, so a restart polls instead of asking twice.
CREATE TABLE grant_aws (
    grant_id            TEXT PRIMARY KEY NOT NULL REFERENCES grants (id),
    principal_id        TEXT,
    permission_set_arn  TEXT,
    create_started_at   TIMESTAMPTZ,
    create_request_id   TEXT,
    delete_started_at   TIMESTAMPTZ,
    delete_request_id   TEXT,
    shared_with         TEXT,
    attempts            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at     TIMESTAMPTZ,
    last_error          TEXT,
    other_paths         TEXT
);

-- Leases on one (user, account, permission set): whoever holds it is the only
-- reaper acting on that assignment, so overlapping grants never race.
CREATE TABLE target_leases (
    target      TEXT PRIMARY KEY NOT NULL,
    owner       TEXT NOT NULL,
    lease_until TIMESTAMPTZ NOT NULL
);

CREATE INDEX grants_state_start ON grants (state, requested_start);
