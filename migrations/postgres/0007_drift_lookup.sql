-- Drift: "did Timebox make this assignment?" is a point lookup by the assignment's
-- principal and permission set, not a read of every grant ever made.
CREATE INDEX grant_aws_assignment ON grant_aws (principal_id, permission_set_arn);
