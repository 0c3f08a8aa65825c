-- The people who signed in, by their person id (oidc.person_claim), with the display
-- name their last sign-in gave (the ID token's `name`): pages and exports show a
-- person as "Name (id)" while approvals, grants and the audit log keep the id alone.
CREATE TABLE people (
    id           TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    seen_at      TEXT NOT NULL
);
