//! The service control policies of one account: the denies packed into its slots,
//! each slot's policy created, updated or deleted, a policy someone else edited left
//! alone and reported.

use super::super::session_deny::{self, Limits};
use super::super::{Reaper, ReaperError};
use super::{all_ours, same_policy, to_denies, SessionCloser, SessionReport};
use crate::identity_center::IcErrorKind;
use crate::store::{DenyRow, PolicyKind, StoredPolicy};
use app::domain::{GrantId, SessionsClose};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::BTreeSet;

pub(super) fn scp_name(account: &str, slot: usize) -> String {
    format!("timebox-sessions-{account}-{slot}")
}

/// The result of making one account's (or permission set's) policies say what they
/// should: which grants are carried, which did not fit.
enum Synced {
    Done {
        writes: usize,
    },
    /// A policy was edited by someone else: nothing written, these grants not placed.
    HandEdited {
        policy_id: String,
        slot: i64,
    },
}

impl Reaper {
    /// Makes the SCPs on `account` carry exactly the denies of `rows`; returns the
    /// grants that did not fit.
    pub(super) async fn sync_scp(
        &self,
        closer: &SessionCloser,
        account: &str,
        rows: &[DenyRow],
        now: DateTime<Utc>,
        report: &mut SessionReport,
    ) -> Result<Vec<GrantId>, ReaperError> {
        let denies = to_denies(rows);
        let stored = self
            .store
            .session_policies(PolicyKind::Scp, account)
            .await?;
        let mut packed = session_deny::pack(&denies, now, &Limits::scp(closer.slots));
        if packed.documents.len() > stored.len() {
            // A new slot is needed: only as many as the account has room for.
            let attached = closer.policies.attached_scps(account).await?;
            let ours: BTreeSet<&str> = stored.iter().map(|p| p.policy_id.as_str()).collect();
            let others = attached
                .iter()
                .filter(|p| {
                    !ours.contains(p.id.as_str()) && !p.name.starts_with("timebox-sessions-")
                })
                .count();
            let room = session_deny::MAX_SCPS_PER_TARGET.saturating_sub(others);
            let usable = closer.slots.min(room).max(stored.len());
            if usable == 0 {
                return Ok(packed.placed.into_iter().chain(packed.overflow).collect());
            }
            if usable < closer.slots {
                packed = session_deny::pack(&denies, now, &Limits::scp(usable));
            }
        }
        let synced = self
            .write_scps(closer, account, &stored, &packed.documents)
            .await?;
        let (placed, overflow, writes) = match synced {
            Synced::Done { writes } => (packed.placed, packed.overflow, writes),
            Synced::HandEdited { policy_id, slot } => {
                self.hand_edited(report, rows, "scp", account, &policy_id, slot)
                    .await?;
                return Ok(Vec::new());
            }
        };
        report.writes += writes;
        let written_at = self.clock.now();
        for r in rows.iter().filter(|r| placed.contains(&r.grant)) {
            self.closed(
                report,
                r,
                SessionsClose::ClosedScp,
                written_at,
                json!({ "account": account, "via": "scp" }),
            )
            .await?;
        }
        Ok(overflow)
    }

    /// Writes `documents` to the account's slots (creating, updating, deleting), after
    /// checking each stored policy still holds what Timebox wrote.
    async fn write_scps(
        &self,
        closer: &SessionCloser,
        account: &str,
        stored: &[StoredPolicy],
        documents: &[String],
    ) -> Result<Synced, ReaperError> {
        let p = &closer.policies;
        let mut writes = 0;
        let slots = documents.len().max(
            stored
                .iter()
                .map(|s| usize::try_from(s.slot).unwrap_or(0) + 1)
                .max()
                .unwrap_or(0),
        );
        for slot in 0..slots {
            let slot_no = i64::try_from(slot).unwrap_or(i64::MAX);
            let desired = documents.get(slot);
            let current = stored.iter().find(|s| s.slot == slot_no);
            match (desired, current) {
                (None, None) => {}
                (Some(d), Some(c)) if same_policy(d, &c.content) => {}
                (Some(d), Some(c)) => match p.scp_content(&c.policy_id).await {
                    Ok(live) if same_policy(&live, &c.content) || same_policy(&live, d) => {
                        if !same_policy(&live, d) {
                            p.update_scp(&c.policy_id, d).await?;
                        }
                        // Attached again in case it was detached by hand.
                        p.attach_scp(&c.policy_id, account).await?;
                        self.save_policy(PolicyKind::Scp, account, slot_no, &c.policy_id, d)
                            .await?;
                        writes += 1;
                    }
                    Ok(_) => {
                        return Ok(Synced::HandEdited {
                            policy_id: c.policy_id.clone(),
                            slot: slot_no,
                        })
                    }
                    Err(e) if e.kind == IcErrorKind::NotFound => {
                        // Deleted by hand: made again.
                        self.create_scp(closer, account, slot, d).await?;
                        writes += 1;
                    }
                    Err(e) => return Err(e.into()),
                },
                (Some(d), None) => {
                    if let Some(edited) = self.create_scp(closer, account, slot, d).await? {
                        return Ok(edited);
                    }
                    writes += 1;
                }
                (None, Some(c)) => {
                    match p.scp_content(&c.policy_id).await {
                        Ok(live) if !same_policy(&live, &c.content) => {
                            return Ok(Synced::HandEdited {
                                policy_id: c.policy_id.clone(),
                                slot: slot_no,
                            })
                        }
                        Ok(_) => {
                            p.detach_scp(&c.policy_id, account).await?;
                            p.delete_scp(&c.policy_id).await?;
                        }
                        Err(e) if e.kind == IcErrorKind::NotFound => {}
                        Err(e) => return Err(e.into()),
                    }
                    self.store
                        .delete_session_policy(PolicyKind::Scp, account, slot_no)
                        .await?;
                    writes += 1;
                }
            }
        }
        Ok(Synced::Done { writes })
    }

    /// Creates the slot's SCP (or adopts the one a crash left behind under its name)
    /// and attaches it; `Some` when a policy of that name holds someone else's text.
    async fn create_scp(
        &self,
        closer: &SessionCloser,
        account: &str,
        slot: usize,
        document: &str,
    ) -> Result<Option<Synced>, ReaperError> {
        let p = &closer.policies;
        let name = scp_name(account, slot);
        let description = format!(
            "Timebox: denies the role sessions of revoked grants in account {account} (slot {slot}). Written by Timebox; do not edit."
        );
        let id = match p.create_scp(&name, &description, document).await {
            Ok(id) => id,
            Err(e) if e.code == "DuplicatePolicyException" => {
                let Some(found) = p.find_scp(&name).await? else {
                    return Err(e.into());
                };
                let live = p.scp_content(&found.id).await?;
                if !all_ours(&live) {
                    return Ok(Some(Synced::HandEdited {
                        policy_id: found.id,
                        slot: i64::try_from(slot).unwrap_or(i64::MAX),
                    }));
                }
                if !same_policy(&live, document) {
                    p.update_scp(&found.id, document).await?;
                }
                found.id
            }
            Err(e) => return Err(e.into()),
        };
        p.attach_scp(&id, account).await?;
        self.save_policy(
            PolicyKind::Scp,
            account,
            i64::try_from(slot).unwrap_or(i64::MAX),
            &id,
            document,
        )
        .await?;
        Ok(None)
    }
}
