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
//! here (`word_plan` in `store/grants.rs`): on PostgreSQL
//! from the index's own statistics when they tell ([`WordStats`]: a common word's
//! share, or a bound on a rare one's), otherwise, and always on SQLite, by counting
//! through the index at most [`RARE_AT_MOST`] + 1 matches first.

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

/// How a page finds the grants with the words (`word_plan`).
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

/// What ANALYZE recorded of the words index (migration 0014): its most common words
/// with their shares of the grants, and the number of grants. No row before the
/// first ANALYZE (autovacuum runs it as the table grows).
pub(super) const POSTGRES_STATS: &str =
    "SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs, \
     c.reltuples::float8 FROM pg_stats s JOIN pg_class c ON c.oid = to_regclass('grants') \
     WHERE s.schemaname = current_schema() AND s.tablename = 'grants_justification_words' \
     AND s.most_common_elems IS NOT NULL AND s.most_common_elem_freqs IS NOT NULL";

/// PostgreSQL's statistics of the words: `elems` the most common words, `freqs`
/// their shares of the rows followed by the least and greatest of those shares and
/// the share of rows without words (PostgreSQL's layout), `rows` the grants.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct WordStats {
    pub elems: Vec<String>,
    pub freqs: Vec<f32>,
    pub rows: f64,
}

impl WordStats {
    /// The plan, when the statistics decide it:
    /// - one word among the most common: by its estimated matches (its share of the
    ///   grants; sampled, so accurate for a common word);
    /// - any word outside them has a share below the least common tracked one, so
    ///   the words together match fewer grants than that share (times the shares of
    ///   the other words); when that bound is at most [`RARE_AT_MOST`], the few
    ///   matches are read from the index.
    ///
    /// Otherwise (several common words, whose overlap the shares cannot tell, or a
    /// bound above the threshold) `None`: count.
    pub(super) fn plan(&self, words: &SearchWords) -> Option<Plan> {
        let tracked = self.elems.len();
        if tracked == 0 || self.freqs.len() < tracked + 1 || self.rows.is_nan() || self.rows <= 0.0
        {
            return None;
        }
        let least = f64::from(self.freqs[tracked]);
        let shares: Vec<Option<f64>> = words
            .words()
            .iter()
            .map(|w| {
                self.elems
                    .iter()
                    .position(|e| e == w)
                    .map(|i| f64::from(self.freqs[i]))
            })
            .collect();
        let rare = RARE_AT_MOST as f64;
        let bound = self.rows
            * shares
                .iter()
                .map(|s| s.unwrap_or(least))
                .fold(1.0, |acc, s| acc * s)
                .min(1.0);
        if shares.iter().any(Option::is_none) {
            return (bound <= rare).then_some(Plan::FromIndex);
        }
        match shares.as_slice() {
            [_] => Some(if bound <= rare {
                Plan::FromIndex
            } else {
                Plan::PerRow
            }),
            _ => (bound <= rare).then_some(Plan::FromIndex),
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

    /// A million grants; "incident" in one in five, "for" in all, and the least
    /// common word tracked in one in ten.
    fn stats() -> WordStats {
        WordStats {
            elems: vec!["for".into(), "incident".into(), "rollback".into()],
            freqs: vec![1.0, 0.2, 0.1, 0.1, 1.0, 0.0],
            rows: 1_000_000.0,
        }
    }

    fn plan(stats: &WordStats, text: &str) -> Option<Plan> {
        stats.plan(&SearchWords::parse(text).expect("words"))
    }

    #[test]
    fn the_statistics_decide_one_common_word_and_bound_the_untracked() {
        let s = stats();
        // A tracked word: its share of the grants.
        assert_eq!(plan(&s, "incident"), Some(Plan::PerRow));
        // Untracked words are rarer than the least tracked one (100,000 grants): too
        // many to read from the index without counting.
        assert_eq!(plan(&s, "zanzibar"), None);
        // Several tracked words: their overlap is not known.
        assert_eq!(plan(&s, "incident rollback"), None);
        // With a tiny least share, an untracked word is surely rare, alone or with a
        // common one.
        let fine = WordStats {
            freqs: vec![1.0, 0.2, 0.001, 0.001, 1.0, 0.0],
            ..s.clone()
        };
        assert_eq!(plan(&fine, "zanzibar"), Some(Plan::FromIndex));
        assert_eq!(plan(&fine, "incident zanzibar"), Some(Plan::FromIndex));
        let finer = WordStats {
            elems: vec!["for".into(), "incident".into(), "4711".into()],
            freqs: vec![1.0, 0.2, 0.000_02, 0.000_02, 1.0, 0.0],
            ..s.clone()
        };
        assert_eq!(plan(&finer, "4711"), Some(Plan::FromIndex));
        assert_eq!(plan(&finer, "zanzibar"), Some(Plan::FromIndex));
        assert_eq!(plan(&finer, "incident zanzibar"), Some(Plan::FromIndex));
        assert_eq!(plan(&finer, "incident"), Some(Plan::PerRow));
        // A small history: a tracked word with few grants is read from the index.
        let small = WordStats {
            rows: 10_000.0,
            ..s.clone()
        };
        assert_eq!(plan(&small, "incident"), Some(Plan::FromIndex));
        // No statistics yet, or a layout not understood: count.
        for broken in [
            WordStats {
                elems: vec![],
                freqs: vec![],
                rows: 1e6,
            },
            WordStats {
                rows: -1.0,
                ..s.clone()
            },
            WordStats {
                freqs: vec![1.0, 0.2],
                ..s
            },
        ] {
            assert_eq!(plan(&broken, "incident"), None);
        }
    }
}
