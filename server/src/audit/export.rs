//! `timebox audit export`: the audit events with their hashes, for a SIEM or an
//! external auditor. The events from the first at or after `from` to the last
//! before `to`, contiguous in sequence order (streamed page by page: memory does not
//! grow with the log). JSON lines carry every hashed field exactly as stored, so the
//! segment is verifiable offline: each line's `hash` recomputes from its fields and
//! the `prev_hash` before it (docs/audit.md gives the recipe), and the hash at a
//! checkpoint's sequence matches the checkpoint signed with the public key. CSV is
//! for reading: its cells are defused against spreadsheet formulas, so verify from
//! the JSON lines.

use crate::store::{AuditEvent, Store, StoreError};
use chrono::{DateTime, SecondsFormat, Utc};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Events read per page.
const PAGE: u32 = 5000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jsonl" => Some(Self::Jsonl),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
}

const CSV_HEADER: [&str; 11] = [
    "seq",
    "at",
    "grant_id",
    "actor",
    "action",
    "from_state",
    "to_state",
    "reason",
    "details",
    "prev_hash",
    "hash",
];

/// The time as the hash covers it (microseconds, UTC).
fn at(e: &AuditEvent) -> String {
    e.at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn jsonl(e: &AuditEvent) -> String {
    let mut line = serde_json::json!({
        "seq": e.seq,
        "at": at(e),
        "grant_id": e.grant_id,
        "actor": e.actor,
        "action": e.action,
        "from_state": e.from_state,
        "to_state": e.to_state,
        "reason": e.reason,
        "details": e.details,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    })
    .to_string();
    line.push('\n');
    line
}

fn csv(e: &AuditEvent) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    crate::csv::line(&[
        e.seq.to_string(),
        at(e),
        opt(&e.grant_id),
        e.actor.clone(),
        e.action.clone(),
        opt(&e.from_state),
        opt(&e.to_state),
        opt(&e.reason),
        e.details.clone(),
        e.prev_hash.clone(),
        e.hash.clone(),
    ])
}

/// Writes the events in `[from, to)` to `out`; how many it wrote.
pub async fn export(
    store: &dyn Store,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    format: ExportFormat,
    out: &mut (impl AsyncWrite + Unpin),
) -> Result<u64, ExportError> {
    if format == ExportFormat::Csv {
        out.write_all(crate::csv::line(&CSV_HEADER).as_bytes())
            .await?;
    }
    let (head, _) = store.audit_head().await?;
    let mut after = 0;
    let mut written = 0;
    let mut started = false;
    'pages: while after < head {
        let page = store.audit_events(None, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        let mut chunk = String::new();
        for e in page.iter().take_while(|e| e.seq <= head) {
            // Contiguous: from the first event at or after `from` on, whatever the
            // times of those after it (replicas' clocks may interleave slightly).
            started = started || from.is_none_or(|f| e.at >= f);
            if !started {
                continue;
            }
            if to.is_some_and(|t| e.at >= t) {
                out.write_all(chunk.as_bytes()).await?;
                break 'pages;
            }
            chunk.push_str(&match format {
                ExportFormat::Jsonl => jsonl(e),
                ExportFormat::Csv => csv(e),
            });
            written += 1;
        }
        out.write_all(chunk.as_bytes()).await?;
    }
    out.flush().await?;
    Ok(written)
}

/// Parses one line of a JSON export back into the event it was made from.
pub fn parse_line(line: &str) -> Result<AuditEvent, serde_json::Error> {
    serde_json::from_str(line)
}
