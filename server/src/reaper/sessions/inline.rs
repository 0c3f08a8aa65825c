//! The inline fallback: the denies as statements of the permission set's inline
//! policy, its own statements kept first, then provisioned to its accounts.

use super::super::session_deny::{self, Limits};
use super::super::{Reaper, ReaperError};
use super::{is_ours, statements_of, to_denies, SessionCloser, SessionReport};
use crate::store::{DenyRow, PolicyKind};
use app::domain::{GrantId, SessionsClose};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

impl Reaper {
    /// Makes the Timebox statements of a permission set's inline policy carry exactly
    /// the denies of `rows`, its other statements kept; returns what did not fit.
    pub(super) async fn sync_inline(
        &self,
        closer: &SessionCloser,
        arn: &str,
        rows: &[DenyRow],
        now: DateTime<Utc>,
        report: &mut SessionReport,
    ) -> Result<Vec<GrantId>, ReaperError> {
        let p = &closer.policies;
        let stored = self.store.session_policies(PolicyKind::Inline, arn).await?;
        let live = p.inline_policy(arn).await?;
        let (ours, theirs): (Vec<Value>, Vec<Value>) = statements_of(live.as_deref())
            .into_iter()
            .partition(is_ours);
        let packed = session_deny::pack(&to_denies(rows), now, &Limits::inline(theirs.clone()));
        let desired_ours: Vec<Value> = packed
            .documents
            .first()
            .map(|d| statements_of(Some(d)).into_iter().filter(is_ours).collect())
            .unwrap_or_default();
        let last_written: Option<Vec<Value>> = stored
            .first()
            .map(|s| serde_json::from_str(&s.content).unwrap_or_default());
        // Our statements in AWS must be what Timebox last wrote, or (after a crash)
        // what it is about to write.
        // With no row (a crash between the write and the row), statements under
        // Timebox's Sid are Timebox's.
        let untouched = match &last_written {
            Some(w) => *w == ours || desired_ours == ours,
            None => true,
        };
        if !untouched {
            self.hand_edited(report, rows, "inline", arn, arn, 0)
                .await?;
            return Ok(Vec::new());
        }
        if ours != desired_ours {
            let document = match packed.documents.first() {
                Some(d) => d.clone(),
                None => session_deny::document(&[]),
            };
            p.put_inline_policy(arn, &document).await?;
            report.writes += 1;
        }
        if desired_ours.is_empty() {
            self.store
                .delete_session_policy(PolicyKind::Inline, arn, 0)
                .await?;
        } else {
            let text = Value::Array(desired_ours).to_string();
            self.save_policy(PolicyKind::Inline, arn, 0, arn, &text)
                .await?;
        }
        let written_at = self.clock.now();
        for r in rows.iter().filter(|r| packed.placed.contains(&r.grant)) {
            self.closed(
                report,
                r,
                SessionsClose::ClosedInline,
                written_at,
                json!({ "permission_set_arn": arn, "via": "inline" }),
            )
            .await?;
        }
        Ok(packed.overflow)
    }
}
