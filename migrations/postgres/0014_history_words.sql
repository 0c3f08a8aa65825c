-- Words of the justification, for the history's text filter (docs/benchmarks.md):
-- a GIN index over them, so a word found in one grant in 100,000 is a lookup, not a
-- scan; its statistics let the planner walk the newest-first index instead when the
-- word is common. Words are runs of letters and digits, case-folded ('simple': no
-- stemming, no stop words), as SQLite's FTS5 index. The expression is repeated,
-- character for character, by the query (`store::search::POSTGRES_WORDS`).
CREATE INDEX grants_justification_words ON grants
    USING gin (to_tsvector('simple', regexp_replace(justification, '[^[:alnum:]]+', ' ', 'g')));
