-- Evidence: each grant's CloudTrail activity and its Detective investigation (PostgreSQL).
-- See docs/architecture.md, "Evidence".

-- One row per (grant, CloudTrail event): collecting the same window again stores
-- nothing new. Pages are read in (event_time, event_id) order, by keyset.
CREATE TABLE grant_activity (
    grant_id           TEXT NOT NULL REFERENCES grants (id),
    event_id           TEXT NOT NULL,
    event_time         TIMESTAMPTZ NOT NULL,
    event_name         TEXT NOT NULL,
    event_source       TEXT NOT NULL,
    aws_region         TEXT,
    source_ip          TEXT,
    user_agent         TEXT,
    error_code         TEXT,
    read_only          BOOLEAN,
    resources          TEXT NOT NULL,
    principal_id       TEXT,
    session_issuer_arn TEXT,
    session_created_at TIMESTAMPTZ,
    PRIMARY KEY (grant_id, event_id)
);

CREATE INDEX grant_activity_time ON grant_activity (grant_id, event_time, event_id);
-- "Has this person used this address before?" looks up (source_ip) across grants.
CREATE INDEX grant_activity_ip ON grant_activity (source_ip, event_time);

-- The collection schedule and what the evidence says, per grant. Every step writes
-- here before the next relies on it, so a restarted reaper resumes from this row.
CREATE TABLE grant_evidence (
    grant_id                  TEXT PRIMARY KEY NOT NULL REFERENCES grants (id),
    collections               BIGINT NOT NULL DEFAULT 0,
    last_collected_at         TIMESTAMPTZ,
    window_close_collected_at TIMESTAMPTZ,
    final_collected_at        TIMESTAMPTZ,
    next_collection_at        TIMESTAMPTZ,
    attempts                  BIGINT NOT NULL DEFAULT 0,
    last_error                TEXT,
    summary                   TEXT,
    role_arn                  TEXT,
    investigation_id          TEXT,
    investigation_status      TEXT,
    investigation             TEXT
);

CREATE INDEX grant_evidence_next ON grant_evidence (next_collection_at);
