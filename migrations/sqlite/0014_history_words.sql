-- Words of the justification, for the history's text filter (docs/benchmarks.md):
-- an FTS5 index, so a word found in one grant in 100,000 is a lookup, not a scan.
-- Its rowid is kept in `grants.text_rowid` (a column, not the grants' own rowid,
-- which VACUUM may renumber on a table without an INTEGER PRIMARY KEY). Words are
-- runs of letters and digits, case-folded, accents kept (as PostgreSQL's index).
CREATE VIRTUAL TABLE grants_text USING fts5 (
    justification,
    tokenize = 'unicode61 remove_diacritics 0'
);

ALTER TABLE grants ADD COLUMN text_rowid INTEGER;

INSERT INTO grants_text (rowid, justification) SELECT rowid, justification FROM grants;
UPDATE grants SET text_rowid = rowid;
CREATE UNIQUE INDEX grants_text_rowid ON grants (text_rowid);

CREATE TRIGGER grants_text_insert AFTER INSERT ON grants BEGIN
    INSERT INTO grants_text (justification) VALUES (NEW.justification);
    UPDATE grants SET text_rowid = last_insert_rowid() WHERE rowid = NEW.rowid;
END;

-- A justification is not changed by Timebox; if one is (by hand), the index follows.
CREATE TRIGGER grants_text_update AFTER UPDATE OF justification ON grants BEGIN
    UPDATE grants_text SET justification = NEW.justification WHERE rowid = NEW.text_rowid;
END;
