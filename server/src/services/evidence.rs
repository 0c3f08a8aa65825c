//! A grant's evidence as its readers see it: what the activity says, its events a
//! page at a time, the Detective investigation, and the evidence pack. Evidence is a
//! read of the grant: the reader's handle checks the grant first (`Reader::read`).

use super::access::{AccessError, Core};
use crate::evidence::collect::{parse_investigation, parse_summary};
use crate::evidence::pack::{self, PackHeader};
use crate::store::{ActivityCursor, Store, StoreError};
use app::domain::{ActivityEvent, EvidenceSummary, Grant, GrantId, InvestigationSummary};
use axum::body::Bytes;
use futures_util::Stream;
use std::sync::Arc;

/// How many events one page of a grant's events holds at most.
pub const MAX_EVENTS_PAGE: u32 = 500;
/// Activity events shown on a grant's page (the evidence pack has them all).
const GRANT_PAGE_EVENTS: u32 = 100;

/// What the grant page shows of the evidence.
#[derive(Debug, Clone, Default)]
pub(super) struct Found {
    pub summary: Option<EvidenceSummary>,
    pub events: Vec<ActivityEvent>,
    pub investigation: Option<InvestigationSummary>,
}

/// The evidence of grant `id` for its page.
pub(super) async fn of_grant(core: &Core, id: GrantId) -> Result<Found, AccessError> {
    let row = core.store().grant_evidence(id).await?;
    Ok(Found {
        summary: row
            .as_ref()
            .and_then(|r| parse_summary(id, r.summary.as_deref())),
        investigation: row
            .as_ref()
            .and_then(|r| parse_investigation(id, r.investigation.as_deref())),
        events: events(core, id, None, GRANT_PAGE_EVENTS).await?,
    })
}

/// What the activity says, once it has been collected at least once.
pub(super) async fn summary(
    core: &Core,
    id: GrantId,
) -> Result<Option<EvidenceSummary>, AccessError> {
    Ok(core
        .store()
        .grant_evidence(id)
        .await?
        .and_then(|r| parse_summary(id, r.summary.as_deref())))
}

/// The Detective investigation of the grant's role, once one was started.
pub(super) async fn investigation(
    core: &Core,
    id: GrantId,
) -> Result<Option<InvestigationSummary>, AccessError> {
    Ok(core
        .store()
        .grant_evidence(id)
        .await?
        .and_then(|r| parse_investigation(id, r.investigation.as_deref())))
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

/// A grant's evidence pack, ready to stream.
#[derive(Debug, Clone)]
pub struct EvidencePack {
    pub header: PackHeader,
    store: Arc<dyn Store>,
}

impl EvidencePack {
    /// Gathers the pack of `grant` (already read by the reader), made for
    /// `generated_for`.
    pub(super) async fn gather(
        core: &Core,
        grant: Grant,
        generated_for: String,
    ) -> Result<Self, AccessError> {
        let store = core.store().clone();
        let header = pack::header(
            store.as_ref(),
            core.config.evidence.source.as_str(),
            grant,
            generated_for,
            core.now(),
        )
        .await?;
        Ok(Self { header, store })
    }

    /// The JSON document, its events streamed from the store.
    pub fn json(
        &self,
    ) -> Result<impl Stream<Item = Result<Bytes, StoreError>> + Send, serde_json::Error> {
        pack::json_stream(self.store.clone(), &self.header)
    }

    /// The printable page, its events streamed from the store.
    pub fn html(&self) -> impl Stream<Item = Result<Bytes, StoreError>> + Send {
        pack::html_stream(self.store.clone(), &self.header)
    }
}
