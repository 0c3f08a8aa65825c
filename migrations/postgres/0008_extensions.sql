-- Extensions: a request that extends a grant records which one. Once approved, the
-- access runs on to the end of the access it extends plus the extension's duration.
ALTER TABLE grants ADD COLUMN extends TEXT NULL REFERENCES grants (id);
CREATE INDEX grants_extends ON grants (extends) WHERE extends IS NOT NULL;
-- The other paths to the same access found when the request was made (JSON array of
-- {principal_type, principal, principal_id}; NULL: not looked up), for approvers.
ALTER TABLE grants ADD COLUMN request_paths TEXT NULL;
