//! Words of a grant's justification, as the history's text filter matches them: the
//! grants whose justification has, for every word asked, a word that starts with it
//! ("deplo" finds "deploy"; "ploy" does not). Words are runs of letters and digits,
//! compared case-folded; everything else separates them and is never syntax (`OR`,
//! `*`, quotes and `%` are a word or nothing).
//!
//! Both backends answer from an index (migration 0014): SQLite from an FTS5 table,
//! PostgreSQL from a GIN index over the same words. A page is always full or the last
//! one, whatever the word's frequency:
//! - PostgreSQL's planner knows each word's frequency from its statistics and picks
//!   the index lookup for a rare word or the newest-first walk for a common one;
//! - SQLite's planner knows nothing of FTS5's contents, so [`Plan`] is chosen here by
//!   counting, through the index, at most [`RARE_AT_MOST`] + 1 matches first.

/// The words a history search asks for; at least one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchWords(Vec<String>);

impl SearchWords {
    /// The words of `text`, or `None` if it has no letters or digits.
    pub fn parse(text: &str) -> Option<Self> {
        let words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        (!words.is_empty()).then_some(Self(words))
    }

    pub fn words(&self) -> &[String] {
        &self.0
    }

    /// FTS5's query: every word as a quoted prefix (`"deplo"* "prod"*`, an AND).
    pub(super) fn fts5(&self) -> String {
        self.0
            .iter()
            .map(|w| format!("\"{w}\"*"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// PostgreSQL's `tsquery`: every word as a quoted prefix (`'deplo':* & 'prod':*`).
    pub(super) fn tsquery(&self) -> String {
        self.0
            .iter()
            .map(|w| format!("'{w}':*"))
            .collect::<Vec<_>>()
            .join(" & ")
    }
}

/// Matches SQLite sorts itself (newest first) when the words are that rare; more
/// and the page walks the newest-first index checking each grant against FTS5.
/// Sorting this many rows costs about what walking to 50 matches of a word found
/// in one grant in a hundred does (docs/benchmarks.md).
pub const RARE_AT_MOST: i64 = 5000;

/// How a SQLite page finds the grants with the words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Few matches: read them from the index, then sort.
    FromIndex,
    /// Many: walk the other filters' newest-first index, checking each grant.
    PerRow,
}

/// SQLite's probe: how many grants match, counting at most to `$2`.
pub(super) const SQLITE_COUNT: &str = "SELECT count(*) FROM (SELECT 1 FROM grants_text \
     WHERE grants_text MATCH $1 LIMIT $2)";

/// The condition, around the bound query, for each way of matching.
pub(super) fn condition(plan: Option<Plan>) -> (&'static str, &'static str) {
    match plan {
        Some(Plan::FromIndex) => (
            " AND text_rowid IN (SELECT rowid FROM grants_text WHERE grants_text MATCH ",
            ")",
        ),
        Some(Plan::PerRow) => (
            " AND EXISTS (SELECT 1 FROM grants_text WHERE grants_text MATCH ",
            " AND grants_text.rowid = grants.text_rowid)",
        ),
        // PostgreSQL: the planner picks; the expression is the index's, verbatim.
        None => (POSTGRES_WORDS, ")"),
    }
}

/// Migration 0014's index expression, matched against the bound `tsquery`.
const POSTGRES_WORDS: &str = " AND to_tsvector('simple', regexp_replace(justification, \
     '[^[:alnum:]]+', ' ', 'g')) @@ to_tsquery('simple', ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_letters_and_digits_and_never_syntax() {
        let w = SearchWords::parse("  Deploy-PROD, INC#42 OR \"x\"* 100% ").expect("words");
        assert_eq!(w.words(), ["deploy", "prod", "inc", "42", "or", "x", "100"]);
        assert_eq!(
            w.fts5(),
            "\"deploy\"* \"prod\"* \"inc\"* \"42\"* \"or\"* \"x\"* \"100\"*"
        );
        assert_eq!(
            SearchWords::parse("café rollback")
                .expect("words")
                .tsquery(),
            "'café':* & 'rollback':*"
        );
        assert_eq!(SearchWords::parse("%% -- ''"), None);
        assert_eq!(SearchWords::parse(""), None);
    }
}
