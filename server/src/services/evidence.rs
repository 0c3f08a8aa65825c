//! A grant's evidence as its readers see it: what the activity says, its events a
//! page at a time, the Detective investigation, and what the evidence pack is made
//! from. Evidence is a read of the grant: the reader's handle checks the grant first
//! (`Reader::read`). The evidence adapters and the pack's rendering live in
//! `crate::evidence`, which depends on this layer, never the other way.

use super::access::{AccessError, Core};
use crate::store::{ActivityCursor, Store};
use app::domain::{ActivityEvent, EvidenceSummary, Grant, GrantId, InvestigationSummary};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// How many events one page of a grant's events holds at most.
pub const MAX_EVENTS_PAGE: u32 = 500;

/// What the activity of a grant says and its Detective investigation, once
/// collected or started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evidence {
    pub summary: Option<EvidenceSummary>,
    pub investigation: Option<InvestigationSummary>,
}

/// The stored evidence of grant `id`.
pub(super) async fn of_grant(core: &Core, id: GrantId) -> Result<Evidence, AccessError> {
    let row = core.store().grant_evidence(id).await?.unwrap_or_default();
    Ok(Evidence {
        summary: stored(id, "evidence summary", row.summary.as_deref()),
        investigation: stored(id, "investigation", row.investigation.as_deref()),
    })
}

/// A page of the grant's events in time order, after `after` (keyset).
pub(super) async fn events(
    core: &Core,
    id: GrantId,
    after: Option<ActivityCursor>,
    limit: u32,
) -> Result<Vec<ActivityEvent>, AccessError> {
    Ok(core
        .store()
        .activity_page(id, after.as_ref(), limit.clamp(1, MAX_EVENTS_PAGE))
        .await?)
}

/// A stored JSON column of the grant's evidence; `None` (and logged) when it does
/// not parse, so the page still shows the rest.
fn stored<T: DeserializeOwned>(id: GrantId, what: &str, json: Option<&str>) -> Option<T> {
    serde_json::from_str(json?)
        .inspect_err(|e| tracing::error!(grant = %id, error = %e, "stored {what} is unreadable"))
        .ok()
}

/// A grant the reader may read, with what its evidence pack is made from (the pack
/// itself is rendered by `crate::evidence::pack`).
#[derive(Debug, Clone)]
pub struct PackSource {
    pub grant: Grant,
    /// Who the pack is made for: "Name (id)".
    pub generated_for: String,
    /// Where the pack's events stream from.
    pub store: Arc<dyn Store>,
    /// `evidence.source`, shown in the pack.
    pub source: &'static str,
    pub now: DateTime<Utc>,
    /// The server's checkpoint key: a stored checkpoint it did not sign is not trusted.
    pub checkpoint_key: Option<ed25519_dalek::VerifyingKey>,
}

impl PackSource {
    pub(super) fn new(core: &Core, grant: Grant, generated_for: String) -> Self {
        Self {
            grant,
            generated_for,
            store: core.store().clone(),
            source: core.config.evidence.source.as_str(),
            now: core.now(),
            checkpoint_key: core.checkpoint_key,
        }
    }
}
