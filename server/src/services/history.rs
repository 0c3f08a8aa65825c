//! The history: everybody's grants, newest first, filtered by requester, account,
//! permission set, state, creation time and words of the justification (the
//! database's full-text index, `store::search`), one keyset page at a time (an opaque
//! cursor). Filters are parsed here and name the wrong field; the caller was checked
//! by the reader's handle.

use super::access::{AccessError, Core};
use crate::store::{Cursor, GrantFilter, SearchWords};
use app::api::{HistoryPage, HistoryQuery};
use app::domain::{FieldError, GrantId, GrantState};
use chrono::{DateTime, NaiveDate, Utc};

/// Rows the history returns when the query does not say.
pub const HISTORY_DEFAULT_LIMIT: u32 = 50;
/// Rows the history returns at most.
pub const HISTORY_MAX_LIMIT: u32 = 500;

/// One page of the history `q` asks for.
pub(super) async fn page(core: &Core, q: HistoryQuery) -> Result<HistoryPage, AccessError> {
    let limit = match q.limit {
        None => HISTORY_DEFAULT_LIMIT,
        Some(n) if (1..=HISTORY_MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            return Err(FieldError::new(
                "limit",
                format!("must be between 1 and {HISTORY_MAX_LIMIT}"),
            )
            .into())
        }
    };
    let filter = history_filter(&q)?;
    let after = match q.cursor.trim() {
        "" => None,
        c => Some(decode_cursor(c)?),
    };
    // One row more than asked tells whether there is a next page.
    let mut grants = core.store().list_grants(&filter, after, limit + 1).await?;
    let next = if grants.len() > limit as usize {
        grants.truncate(limit as usize);
        grants.last().map(|g| encode_cursor(g.created_at, g.id))
    } else {
        None
    };
    Ok(HistoryPage { grants, next })
}

/// Parses a history filter's date: RFC 3339, or a day (`YYYY-MM-DD`, UTC; the start
/// of the day for `from`, its end for `to`).
pub(super) fn parse_bound(
    field: &'static str,
    v: &str,
    end_of_day: bool,
) -> Result<Option<DateTime<Utc>>, FieldError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    let day = NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
        FieldError::new(
            field,
            "is not a date (YYYY-MM-DD) or a date and time (RFC 3339)",
        )
    })?;
    let t = if end_of_day {
        day.and_hms_micro_opt(23, 59, 59, 999_999)
    } else {
        day.and_hms_opt(0, 0, 0)
    };
    Ok(t.map(|t| t.and_utc()))
}

/// The history's store filter, with the words the justification must have.
fn history_filter(q: &HistoryQuery) -> Result<GrantFilter, FieldError> {
    let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let states = match q.state.trim() {
        "" | "all" => Vec::new(),
        s => vec![GrantState::parse(s).ok_or_else(|| {
            FieldError::new(
                "state",
                format!(
                    "is not a state; use one of {}",
                    GrantState::ALL.map(GrantState::as_str).join(", ")
                ),
            )
        })?],
    };
    if let Some(a) = text(&q.account) {
        app::domain::AccountId::parse(&a)?;
    }
    let from = parse_bound("from", &q.from, false)?;
    let to = parse_bound("to", &q.to, true)?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(FieldError::new("to", "is before from"));
        }
    }
    if q.text.chars().count() > 200 {
        return Err(FieldError::new("text", "must be at most 200 characters"));
    }
    let words = match q.text.trim() {
        "" => None,
        t => Some(
            SearchWords::parse(t)
                .ok_or_else(|| FieldError::new("text", "has no letters or digits to search for"))?,
        ),
    };
    Ok(GrantFilter {
        requester: text(&q.user),
        account_id: text(&q.account),
        permission_set: text(&q.permission_set),
        states,
        created_from: from,
        created_to: to,
        words,
    })
}

/// `<created_at in microseconds>.<grant id>`: opaque to clients, checked on the way in.
fn encode_cursor(created_at: DateTime<Utc>, id: GrantId) -> String {
    format!("{}.{}", created_at.timestamp_micros(), id)
}

fn decode_cursor(c: &str) -> Result<Cursor, FieldError> {
    let bad = || FieldError::new("cursor", "is not a cursor this server returned");
    let (micros, id) = c.split_once('.').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let created_at = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(bad)?;
    let id = GrantId::parse(id).map_err(|_| bad())?;
    Ok(Cursor { created_at, id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::api::ApiError;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = GrantId(uuid::Uuid::new_v4());
        let at = DateTime::<Utc>::from_timestamp_micros(1_764_300_000_123_456).expect("time");
        let c = decode_cursor(&encode_cursor(at, id)).expect("decodes");
        assert_eq!((c.created_at, c.id), (at, id));
        for bad in ["", "x", "1.2", "abc.def", "1764300000.not-a-uuid"] {
            let e = ApiError::from(decode_cursor(bad).expect_err(bad));
            assert_eq!(e.field.as_deref(), Some("cursor"));
        }
    }

    #[test]
    fn history_filters_name_the_wrong_field() {
        let q = |f: fn(&mut HistoryQuery)| {
            let mut q = HistoryQuery::default();
            f(&mut q);
            ApiError::from(history_filter(&q).expect_err("refused")).field
        };
        assert_eq!(q(|q| q.state = "sideways".into()), Some("state".into()));
        assert_eq!(q(|q| q.from = "yesterday".into()), Some("from".into()));
        assert_eq!(q(|q| q.account = "12".into()), Some("account_id".into()));
        assert_eq!(
            q(|q| {
                q.from = "2026-02-01".into();
                q.to = "2026-01-01".into();
            }),
            Some("to".into())
        );
        assert_eq!(q(|q| q.text = "%% --".into()), Some("text".into()));
        let ok = history_filter(&HistoryQuery {
            from: "2026-01-01".into(),
            to: "2026-01-31".into(),
            state: "active".into(),
            ..HistoryQuery::default()
        })
        .expect("valid");
        assert_eq!(ok.states, vec![GrantState::Active]);
        assert_eq!(
            ok.created_to.map(|t| t.to_rfc3339()),
            Some("2026-01-31T23:59:59.999999+00:00".into())
        );
    }
}
