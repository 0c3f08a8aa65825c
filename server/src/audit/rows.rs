//! Every grant row checked against its audit events (`store::projection`), page by
//! page in id order: part of `timebox audit verify`, after the chain walk. A row
//! changed without an event (an `UPDATE grants …` by someone with database access)
//! is named with the field, the row's value and the events' value.

use crate::store::projection;
use crate::store::{AuditEvent, Store, StoreError};
use app::domain::GrantId;
use std::collections::HashMap;

/// Grants read per page.
const PAGE: u32 = 1000;

/// A grant whose row its events do not give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadGrant {
    pub grant: String,
    pub problem: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowsReport {
    pub grants_checked: i64,
    /// Grants requested before their facts were recorded, checked on the facts a
    /// later event recorded only.
    pub grants_partial: i64,
    pub first_bad: Option<BadGrant>,
}

/// Checks every grant row; `progress` is told the grants checked so far after each
/// page. Stops at the first grant that does not hold.
pub async fn check_rows(
    store: &dyn Store,
    mut progress: impl FnMut(i64),
) -> Result<RowsReport, StoreError> {
    let mut report = RowsReport::default();
    let mut after: Option<GrantId> = None;
    loop {
        let page = match store.grants_by_id(after, PAGE).await {
            Ok(page) => page,
            // A row no longer readable as a grant was edited by hand.
            Err(StoreError::Corrupt(why)) => {
                report.first_bad = Some(BadGrant {
                    grant: after.map_or_else(
                        || "the first grant".to_owned(),
                        |g| format!("a grant after {g}"),
                    ),
                    problem: format!("its row is not valid ({why}): it was changed by hand"),
                });
                return Ok(report);
            }
            Err(e) => return Err(e),
        };
        let (Some(first), Some(last)) = (page.first(), page.last()) else {
            return Ok(report);
        };
        // One page's events, by grant (the database's text order need not be Rust's).
        let mut by_grant: HashMap<String, Vec<AuditEvent>> = HashMap::new();
        for e in store.events_of_grants(first.id, last.id).await? {
            if let Some(g) = e.grant_id.clone() {
                by_grant.entry(g).or_default().push(e);
            }
        }
        for g in &page {
            let id = g.id.to_string();
            let events = by_grant.remove(&id).unwrap_or_default();
            let check = projection::check(g, &events);
            report.grants_checked += 1;
            if !check.complete {
                report.grants_partial += 1;
            }
            if let Some(problem) = check.problem() {
                report.first_bad = Some(BadGrant { grant: id, problem });
                return Ok(report);
            }
        }
        progress(report.grants_checked);
        after = Some(last.id);
    }
}
