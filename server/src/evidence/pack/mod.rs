//! The evidence pack of one grant: the request, the approvals, the three windows and
//! why, what the activity says and every event, the Detective investigation, and the
//! audit-chain verification for the grant. One JSON document, or a printable HTML page
//! ([`html`]).
//!
//! The events are streamed into the response page by page from the store, so a grant
//! with a great many events is never held in memory.

mod html;

use super::collect::{parse_investigation, parse_summary};
use crate::store::{ActivityCursor, Approval, AuditEvent, ChainVerification, Store, StoreError};
use app::domain::{
    ActivityEvent, EvidenceSummary, Grant, InvestigationSummary, WindowInputs, Windows,
};
use axum::body::Bytes;
use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use futures_util::Stream;
use serde::Serialize;
use std::sync::Arc;

/// Events read from the store per chunk of the response.
const PAGE: u32 = 500;
/// How many audit events of one grant the pack lists at most (a grant has a handful).
const AUDIT_LIMIT: u32 = 1000;

/// The windows with the reason for each, in words.
#[derive(Debug, Clone, Serialize)]
pub struct WindowsExplained {
    pub windows: Windows,
    pub granted_why: String,
    pub real_why: String,
    pub observed_why: String,
    /// The end to report: the evidence bound where the evidence supports one.
    pub effective_end: DateTime<Utc>,
}

/// How collection went.
#[derive(Debug, Clone, Serialize)]
pub struct CollectionStatus {
    pub source: &'static str,
    pub collections: i64,
    pub last_collected_at: Option<DateTime<Utc>>,
    pub window_close_collected_at: Option<DateTime<Utc>>,
    pub final_collected_at: Option<DateTime<Utc>>,
    pub next_collection_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// The audit trail of the grant and whether the chain holding it verifies.
#[derive(Debug, Clone, Serialize)]
pub struct AuditVerification {
    pub events: Vec<AuditEvent>,
    /// Every event of the grant recomputes to its stored hash.
    pub grant_events_verify: bool,
    /// The chain around the grant: from the event before its first to the first
    /// signed checkpoint at or after its last event (or the head when none is yet),
    /// so the pack's cost does not grow with the log (`timebox audit verify` walks it
    /// all).
    pub chain: ChainVerification,
    /// The signed checkpoint the walk ended at, if one covers the grant.
    pub checkpoint: Option<i64>,
    /// The chain is intact up to and including the grant's last event.
    pub grant_covered_by_intact_chain: bool,
    /// The grant's record is what its events say (`store::projection`).
    pub row_matches_events: bool,
    /// The first fact of the record its events do not give, when one is not.
    pub row_problem: Option<String>,
    pub verdict: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlagText {
    pub title: &'static str,
    pub description: String,
}

/// Everything in the pack but the events.
#[derive(Debug, Clone, Serialize)]
pub struct PackHeader {
    pub format: &'static str,
    pub generated_at: DateTime<Utc>,
    pub generated_for: String,
    pub grant: Grant,
    pub approvals: Vec<Approval>,
    pub windows: Option<WindowsExplained>,
    pub collection: Option<CollectionStatus>,
    pub summary: Option<EvidenceSummary>,
    pub flags: Vec<FlagText>,
    pub investigation: Option<InvestigationSummary>,
    pub audit: AuditVerification,
}

/// Gathers the pack's header (the caller has already been authorized).
pub async fn header(
    store: &dyn Store,
    source: &'static str,
    grant: Grant,
    generated_for: String,
    now: DateTime<Utc>,
    checkpoint_key: Option<&VerifyingKey>,
) -> Result<PackHeader, StoreError> {
    let approvals = store.approvals(grant.id).await?;
    let row = store.grant_evidence(grant.id).await?;
    let summary = row
        .as_ref()
        .and_then(|r| parse_summary(grant.id, r.summary.as_deref()));
    let investigation = row
        .as_ref()
        .and_then(|r| parse_investigation(grant.id, r.investigation.as_deref()));
    let windows = explain(&grant, summary.as_ref());
    let flags = summary
        .iter()
        .flat_map(|s| s.flags.iter())
        .map(|f| FlagText {
            title: f.title(),
            description: f.describe(),
        })
        .collect();
    let collection = row.map(|r| CollectionStatus {
        source,
        collections: r.collections,
        last_collected_at: r.last_collected_at,
        window_close_collected_at: r.window_close_collected_at,
        final_collected_at: r.final_collected_at,
        next_collection_at: r.next_collection_at,
        last_error: r.last_error,
    });
    let audit = audit(store, &grant, checkpoint_key).await?;
    Ok(PackHeader {
        format: "timebox-evidence-pack/1",
        generated_at: now,
        generated_for,
        grant,
        approvals,
        windows,
        collection,
        summary,
        flags,
        investigation,
        audit,
    })
}

fn explain(g: &Grant, summary: Option<&EvidenceSummary>) -> Option<WindowsExplained> {
    let inputs = WindowInputs {
        activated_at: g.activated_at?,
        revoked_at: g.revoked_at,
        planned_end: g.ends_at?,
        portal_session: g.portal_session?,
        permission_set_session: g.permission_set_session?,
        observed: summary.and_then(EvidenceSummary::observed),
        sessions_closed_at: g.sessions_closed_at,
    };
    let w = Windows::compute(&inputs).ok()?;
    let granted_why = if w.is_final {
        "from the moment the account assignment's creation SUCCEEDED to the moment its deletion SUCCEEDED".to_owned()
    } else {
        "from the moment the account assignment's creation SUCCEEDED to the planned end (the grant is not over)".to_owned()
    };
    let mut real_why = match (w.sessions_closed_at, g.sessions_close) {
        (Some(_), Some(c)) => format!("closed: {}; {}", w.explanation(), c.describe()),
        (_, Some(c)) if !c.is_closed() => {
            format!("worst case: {}; {}", w.explanation(), c.describe())
        }
        _ => format!("worst case: {}", w.explanation()),
    };
    if let Some(bound) = w.evidence_bound {
        real_why.push_str(&format!(
            "; the evidence narrows it to {}: the last credentials were issued at {} and a \
             session lasts {}",
            bound.format("%Y-%m-%d %H:%M UTC"),
            inputs
                .observed
                .and_then(|o| o.last_credential_issuance)
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default(),
            app::domain::format_human(w.permission_set_session.as_duration()),
        ));
    }
    let observed_why = match (&w.observed, summary) {
        (Some(o), Some(s)) => format!(
            "first and last CloudTrail activity that matched this person, account and \
             permission set exactly: {} call(s) between {} and {}{}",
            s.event_count,
            o.start.format("%Y-%m-%d %H:%M:%S UTC"),
            o.end.format("%Y-%m-%d %H:%M:%S UTC"),
            if s.covers_tail {
                ""
            } else {
                " (collection is not final yet: later activity may still arrive)"
            }
        ),
        (None, Some(s)) if s.covers_tail => {
            "no activity matched this grant in CloudTrail, collected after the real window closed"
                .to_owned()
        }
        _ => "no activity has been collected yet".to_owned(),
    };
    Some(WindowsExplained {
        effective_end: w.effective_end(),
        windows: w,
        granted_why,
        real_why,
        observed_why,
    })
}

async fn audit(
    store: &dyn Store,
    g: &Grant,
    key: Option<&VerifyingKey>,
) -> Result<AuditVerification, StoreError> {
    let events = store.audit_events(Some(g.id), 0, AUDIT_LIMIT).await?;
    let proof = crate::audit::grant::prove(store, g, &events, key).await?;
    Ok(AuditVerification {
        verdict: proof.verdict(),
        row_problem: proof.row.problem(),
        events,
        grant_events_verify: proof.events_verify,
        chain: proof.chain,
        checkpoint: proof.checkpoint,
        grant_covered_by_intact_chain: proof.covered_by_intact_chain,
        row_matches_events: proof.row_matches_events,
    })
}

/// Which part of the document a stream is writing.
enum Part {
    Head,
    Events(Option<ActivityCursor>, bool),
    Tail,
    Done,
}

type Chunk = Result<Bytes, StoreError>;

/// Pages the grant's events and renders each page with `render(events, first)`.
fn stream_document(
    store: Arc<dyn Store>,
    grant: app::domain::GrantId,
    head: String,
    tail: String,
    render: fn(&[ActivityEvent], bool) -> String,
) -> impl Stream<Item = Chunk> + Send {
    futures_util::stream::unfold(
        (Part::Head, store, head, tail),
        move |(part, store, head, tail)| async move {
            match part {
                Part::Head => Some((
                    Ok(Bytes::from(head)),
                    (Part::Events(None, true), store, String::new(), tail),
                )),
                Part::Events(after, first) => {
                    match store.activity_page(grant, after.as_ref(), PAGE).await {
                        Ok(events) if events.is_empty() => {
                            Some((Ok(Bytes::new()), (Part::Tail, store, String::new(), tail)))
                        }
                        Ok(events) => {
                            let next = events.last().map(ActivityCursor::after);
                            let chunk = render(&events, first);
                            let part = if events.len() < PAGE as usize {
                                Part::Tail
                            } else {
                                Part::Events(next, false)
                            };
                            Some((Ok(Bytes::from(chunk)), (part, store, String::new(), tail)))
                        }
                        Err(e) => Some((Err(e), (Part::Done, store, String::new(), tail))),
                    }
                }
                Part::Tail => Some((
                    Ok(Bytes::from(tail)),
                    (Part::Done, store, String::new(), String::new()),
                )),
                Part::Done => None,
            }
        },
    )
}

fn json_events(events: &[ActivityEvent], first: bool) -> String {
    let mut out = String::new();
    for (i, e) in events.iter().enumerate() {
        if !(first && i == 0) {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(e).unwrap_or_else(|_| "null".to_owned()));
    }
    out
}

/// The JSON pack: the header's fields, then `"events": [...]`, streamed.
pub fn json_stream(
    store: Arc<dyn Store>,
    header: &PackHeader,
) -> Result<impl Stream<Item = Chunk> + Send, serde_json::Error> {
    let mut head = serde_json::to_string(header)?;
    // The header is an object: reopen it to append the events.
    head.pop();
    head.push_str(",\"events\":[");
    Ok(stream_document(
        store,
        header.grant.id,
        head,
        "]}".to_owned(),
        json_events,
    ))
}

/// The printable page: the header as sections, then the events table, streamed.
pub fn html_stream(
    store: Arc<dyn Store>,
    h: &PackHeader,
    nonce: &str,
) -> impl Stream<Item = Chunk> + Send {
    let (head, tail) = html::page(h, nonce);
    stream_document(store, h.grant.id, head, tail, html::event_rows)
}
