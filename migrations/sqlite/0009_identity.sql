-- The IAM Identity Center user a request was made for, resolved from the signed-in
-- person when the request was sent (identity_center.user_match): the reaper assigns
-- this UserId, and evidence matches CloudTrail's role-session name against this
-- UserName. NULL: resolved at provisioning (grants from before, or Identity Center
-- could not be asked at request time).
ALTER TABLE grants ADD COLUMN identity_user_id TEXT NULL;
ALTER TABLE grants ADD COLUMN identity_user_name TEXT NULL;
