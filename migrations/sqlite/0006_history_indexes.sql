-- The history's filters, newest first, each served by an index so a filtered page of
-- 50 rows reads ~50 index entries even at a million grants (see docs/benchmarks.md).
CREATE INDEX grants_account_created ON grants (account_id, created_at DESC, id DESC);
CREATE INDEX grants_permission_set_created ON grants (permission_set, created_at DESC, id DESC);
CREATE INDEX grants_state_created ON grants (state, created_at DESC, id DESC);
-- Drift reports and other events listed by kind on the admin page.
CREATE INDEX audit_events_action ON audit_events (action, seq);
