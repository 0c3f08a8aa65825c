//! Words of a grant's justification, as the history's text filter matches them: the
//! grants whose justification has every word asked, as a whole word ("deploy" finds
//! "Deploy the fix"; "deplo" and "ploy" do not). Words are runs of letters and
//! digits, compared case-folded; everything else separates them and is never syntax
//! (`OR`, `*`, quotes and `%` are a word or nothing). Whole words, not prefixes: an
//! FTS5 prefix query merges the doclists of every word it covers each time it runs,
//! which made the newest-first walk below cost 12 ms per grant checked (3.4 s a
//! page at a million grants, docs/benchmarks.md).
//!
//! Both backends answer from an index (migration 0014): SQLite from an FTS5 table,
//! PostgreSQL from a GIN index over the same words. A page is always full or the last
//! one, whatever the word's frequency. Neither planner can be left to choose between
//! reading the few matches from the index and walking the newest-first index for a
//! common word (SQLite knows nothing of FTS5's contents; PostgreSQL estimates every
//! word outside its most common ones at 0.5 % of the rows), so [`Plan`] is chosen
//! here by counting, through the index, at most [`RARE_AT_MOST`] + 1 matches first.

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

    /// The backend's full-text query: every word quoted, all of them required
    /// (FTS5 `"deploy" "prod"`; PostgreSQL's `tsquery` `'deploy' & 'prod'`).
    pub(super) fn query(&self, backend: Backend) -> String {
        let (quote, and) = match backend {
            Backend::Sqlite => ('"', " "),
            Backend::Postgres => ('\'', " & "),
        };
        self.0
            .iter()
            .map(|w| format!("{quote}{w}{quote}"))
            .collect::<Vec<_>>()
            .join(and)
    }
}

/// Matches a page sorts itself (newest first) when the words are that rare; more
/// and the page walks the newest-first index checking each grant. Not tuned: the
/// walk's cost grows as the words' share of the history falls, so a word just above
/// this many matches in a large history is the slowest case (docs/benchmarks.md).
pub const RARE_AT_MOST: i64 = 5000;

/// The backend whose full-text index a page asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backend {
    Sqlite,
    Postgres,
}

/// How a page finds the grants with the words, chosen by [`count_sql`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Few matches: read them from the index, then sort.
    FromIndex,
    /// Many: walk the other filters' newest-first index, checking each grant.
    PerRow,
}

impl Plan {
    /// The plan for `matches` (counted up to [`RARE_AT_MOST`] + 1).
    pub(super) fn for_matches(matches: i64) -> Self {
        if matches <= RARE_AT_MOST {
            Self::FromIndex
        } else {
            Self::PerRow
        }
    }
}

/// Migration 0014's index expression, character for character, matched against
/// the `tsquery` bound after it.
macro_rules! postgres_words {
    () => {
        "to_tsvector('simple', regexp_replace(justification, '[^[:alnum:]]+', ' ', 'g')) \
         @@ to_tsquery('simple', "
    };
}

/// The probe: how many grants have the words `$1`, counting at most to `$2`.
pub(super) fn count_sql(backend: Backend) -> String {
    let matching = match backend {
        Backend::Sqlite => "grants_text WHERE grants_text MATCH $1",
        Backend::Postgres => concat!("grants WHERE ", postgres_words!(), "$1)"),
    };
    format!("SELECT count(*) FROM (SELECT 1 FROM {matching} LIMIT $2) AS m")
}

/// The condition, around the bound query, for `plan` on `backend`.
pub(super) fn condition(backend: Backend, plan: Plan) -> (&'static str, &'static str) {
    match (backend, plan) {
        (Backend::Sqlite, Plan::FromIndex) => (
            " AND text_rowid IN (SELECT rowid FROM grants_text WHERE grants_text MATCH ",
            ")",
        ),
        (Backend::Sqlite, Plan::PerRow) => (
            " AND EXISTS (SELECT 1 FROM grants_text WHERE grants_text MATCH ",
            " AND grants_text.rowid = grants.text_rowid)",
        ),
        // The same condition for both plans; the rare one is fenced ([`fenced`]).
        (Backend::Postgres, _) => (POSTGRES_CONDITION, ")"),
    }
}

/// Whether `plan` on `backend` runs the filter in a subquery the planner may not
/// merge (`OFFSET 0`), sorting its rows outside: PostgreSQL estimates any word outside
/// its most common ones at 0.5 % of the rows and would walk the newest-first index
/// for a word found in one grant in 100,000, checking every row (seconds a page).
pub(super) fn fenced(backend: Backend, plan: Plan) -> bool {
    backend == Backend::Postgres && plan == Plan::FromIndex
}

const POSTGRES_CONDITION: &str = concat!(" AND ", postgres_words!());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_letters_and_digits_and_never_syntax() {
        let w = SearchWords::parse("  Deploy-PROD, INC#42 OR \"x\"* 100% ").expect("words");
        assert_eq!(w.words(), ["deploy", "prod", "inc", "42", "or", "x", "100"]);
        assert_eq!(
            w.query(Backend::Sqlite),
            "\"deploy\" \"prod\" \"inc\" \"42\" \"or\" \"x\" \"100\""
        );
        assert_eq!(
            SearchWords::parse("café rollback")
                .expect("words")
                .query(Backend::Postgres),
            "'café' & 'rollback'"
        );
        assert_eq!(SearchWords::parse("%% -- ''"), None);
        assert_eq!(SearchWords::parse(""), None);
    }
}
