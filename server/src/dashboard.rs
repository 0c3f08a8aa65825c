//! The dashboard's backend: [`app::api::backend::Backend`] over the services. Pages,
//! server functions and the `/api/v1` routes all call these methods, so they share
//! one set of checks: every method asks [`GuardedGrants`](crate::access) (which asks
//! `authorize`) before it reads or changes anything.
//!
//! Error policy: domain refusals and denials become [`ApiError`]s with a stable code;
//! storage and AWS failures are logged here once, with their detail, and reach the
//! caller as `internal`/`unavailable` without it.

use crate::access::AccessError;
use crate::grants::GrantError;
use crate::identity_center::{IcError, IdentityError};
use crate::policy::Catalog as PolicyCatalog;
use crate::store::{
    AuditEvent, CatalogNode, CatalogPermissionSet, Cursor, GrantFilter, NodeKind, StoreError,
};
use crate::Services;
use app::api::backend::Backend;
use app::api::*;
use app::domain::{
    authorize, ApprovalRule, Caller, Denied, Grant, GrantId, GrantState, Operation, PersonId,
    Refusal,
};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;

/// Rows the history returns when the query does not say.
pub const HISTORY_DEFAULT_LIMIT: u32 = 50;
/// Rows the history returns at most.
pub const HISTORY_MAX_LIMIT: u32 = 500;
/// Lists that are not paged (my grants, inbox, active now) show at most this many.
const LIST_LIMIT: u32 = 200;
/// Grants read per query while matching justification text.
const TEXT_SCAN_CHUNK: u32 = 500;
/// Grants read at most for one page of a justification-text search.
const TEXT_SCAN_BUDGET: usize = 4000;
/// Activity events shown on a grant's page (the evidence pack has them all).
const GRANT_PAGE_EVENTS: u32 = 100;

#[derive(Debug, Clone)]
pub struct Dashboard {
    services: Services,
}

impl Dashboard {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    fn portal_seconds(&self) -> i64 {
        self.services
            .config
            .identity_center
            .portal_session
            .as_duration()
            .num_seconds()
    }

    fn allow(
        &self,
        caller: &Caller,
        op: Operation,
        requester: Option<&PersonId>,
    ) -> Result<(), ApiError> {
        self.services
            .access
            .allow(caller, op, requester)
            .map_err(denied)
    }

    async fn session_seconds_of(&self, permission_set: &str) -> Result<Option<i64>, ApiError> {
        Ok(self
            .services
            .store
            .catalog_permission_sets()
            .await
            .map_err(store_error)?
            .into_iter()
            .find(|p| p.name == permission_set)
            .map(|p| p.session_duration_seconds))
    }

    /// The synced catalog, read once per call and shared by what the call derives
    /// from it (choices, the policy's view, the admin's counts).
    async fn catalog(&self) -> Result<CatalogSnapshot, ApiError> {
        let store = &self.services.store;
        Ok(CatalogSnapshot {
            nodes: store.catalog_nodes().await.map_err(store_error)?,
            permission_sets: store.catalog_permission_sets().await.map_err(store_error)?,
            synced_at: store.catalog_synced_at().await.map_err(store_error)?,
        })
    }

    /// What `caller` may ask for: the policy's entitlements over the synced catalog.
    fn offers(&self, caller: &Caller, catalog: &CatalogSnapshot) -> Vec<Offer> {
        let policy_catalog = PolicyCatalog::new(
            catalog.nodes.clone(),
            catalog
                .permission_sets
                .iter()
                .map(|p| p.name.clone())
                .collect(),
            catalog.synced_at.is_some(),
        );
        self.services
            .policy
            .entitlements_for(caller, &policy_catalog)
            .into_iter()
            .map(|e| {
                let (approvals_required, approvers) = match e.approval {
                    ApprovalRule::Auto => (0, Vec::new()),
                    ApprovalRule::Required { count, approvers } => (count, approvers),
                };
                Offer {
                    account_id: e.account_id,
                    account_name: e.account_name,
                    permission_set: e.permission_set,
                    policy: e.policy,
                    max_duration_minutes: e.max_duration_minutes,
                    approvals_required,
                    approvers,
                    ticket_required: e.ticket.required,
                    ticket_pattern: e.ticket.pattern,
                    min_justification: e.min_justification,
                    break_glass: e.break_glass,
                }
            })
            .collect()
    }

    async fn approval_views(&self, id: GrantId) -> Result<Vec<ApprovalView>, ApiError> {
        Ok(self
            .services
            .store
            .approvals(id)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|a| ApprovalView {
                approver: a.approver,
                decision: a.decision.as_str().to_owned(),
                comment: a.comment,
                decided_at: a.decided_at,
            })
            .collect())
    }

    async fn recent_use(&self, g: &Grant) -> Result<RecentUse, ApiError> {
        let now = self.services.clock.now();
        let filter = GrantFilter {
            requester: Some(g.request.requester.to_string()),
            account_id: Some(g.request.account_id.to_string()),
            permission_set: Some(g.request.permission_set.to_string()),
            created_from: Some(now - chrono::Duration::days(30)),
            ..GrantFilter::default()
        };
        let grants = self
            .services
            .store
            .list_grants(&filter, None, 500)
            .await
            .map_err(store_error)?;
        let used: Vec<&Grant> = grants
            .iter()
            .filter(|x| x.id != g.id && x.activated_at.is_some())
            .collect();
        let mut flagged = 0;
        for x in &used {
            let summary = self
                .services
                .store
                .grant_evidence(x.id)
                .await
                .map_err(store_error)?
                .and_then(|e| e.summary)
                .and_then(|s| serde_json::from_str::<app::domain::EvidenceSummary>(&s).ok());
            if summary.is_some_and(|s| !s.flags.is_empty()) {
                flagged += 1;
            }
        }
        Ok(RecentUse {
            grants_30d: used.len() as u32,
            flagged_30d: flagged,
        })
    }

    /// Checks the grant's own audit events and their neighbours in the chain: each
    /// event's hash matches its content, its `prev_hash` is the previous event's
    /// hash, and the next event points back at it. The whole-chain walk is the
    /// auditors' `verify` (it reads every event).
    async fn check_grant_chain(&self, events: &[AuditEvent]) -> Result<ChainCheck, ApiError> {
        let store = &self.services.store;
        let mut problem = None;
        for e in events {
            if crate::store::audit::recompute(e) != e.hash {
                problem = Some(format!(
                    "event {} does not match its hash: it was edited",
                    e.seq
                ));
                break;
            }
            // Events seq-1, seq and seq+1.
            let around = store
                .audit_events(None, (e.seq - 2).max(0), 3)
                .await
                .map_err(store_error)?;
            let before = around.iter().find(|x| x.seq == e.seq - 1);
            let after = around.iter().find(|x| x.seq == e.seq + 1);
            if e.seq > 1 && before.is_none_or(|b| b.hash != e.prev_hash) {
                problem = Some(format!(
                    "event {} does not follow the event before it: an earlier event was changed or removed",
                    e.seq
                ));
                break;
            }
            if let Some(a) = after {
                if a.prev_hash != e.hash {
                    problem = Some(format!(
                        "the event after {} does not point back at it: the event was replaced",
                        e.seq
                    ));
                    break;
                }
            }
        }
        Ok(ChainCheck {
            ok: problem.is_none(),
            events_checked: events.len() as u64,
            problem,
        })
    }

    async fn history_inner(
        &self,
        caller: &Caller,
        q: HistoryQuery,
    ) -> Result<HistoryPage, ApiError> {
        self.allow(caller, Operation::ListAllGrants, None)?;
        let limit = match q.limit {
            None => HISTORY_DEFAULT_LIMIT,
            Some(n) if (1..=HISTORY_MAX_LIMIT).contains(&n) => n,
            Some(_) => {
                return Err(ApiError::field(
                    "limit",
                    format!("must be between 1 and {HISTORY_MAX_LIMIT}"),
                ))
            }
        };
        let (filter, text) = history_filter(&q)?;
        let after = match q.cursor.trim() {
            "" => None,
            c => Some(decode_cursor(c)?),
        };
        if let Some(text) = text {
            return self.history_text(filter, &text, after, limit).await;
        }
        // One row more than asked tells whether there is a next page.
        let mut grants = self
            .services
            .store
            .list_grants(&filter, after, limit + 1)
            .await
            .map_err(store_error)?;
        let next = if grants.len() > limit as usize {
            grants.truncate(limit as usize);
            grants.last().map(|g| encode_cursor(g.created_at, g.id))
        } else {
            None
        };
        Ok(HistoryPage { grants, next })
    }

    /// The history filtered by words of the justification. No index serves a
    /// substring, and a database planner asked for one tends to scan the whole table;
    /// so the page walks the newest-first index of the other filters in chunks and
    /// matches the text here, reading at most [`TEXT_SCAN_BUDGET`] grants per page. A
    /// page can then hold fewer rows than asked (rare words) while `next` continues
    /// from where the scan stopped: every page stays fast at any size of history.
    async fn history_text(
        &self,
        filter: GrantFilter,
        text: &str,
        mut after: Option<Cursor>,
        limit: u32,
    ) -> Result<HistoryPage, ApiError> {
        let needle = text.to_lowercase();
        let mut grants = Vec::new();
        let mut scanned = 0;
        loop {
            let chunk = self
                .services
                .store
                .list_grants(&filter, after, TEXT_SCAN_CHUNK)
                .await
                .map_err(store_error)?;
            let exhausted = chunk.len() < TEXT_SCAN_CHUNK as usize;
            scanned += chunk.len();
            for g in chunk {
                after = Some(Cursor {
                    created_at: g.created_at,
                    id: g.id,
                });
                if g.request
                    .justification
                    .as_str()
                    .to_lowercase()
                    .contains(&needle)
                {
                    grants.push(g);
                    if grants.len() == limit as usize {
                        // Full page: continue after its last row.
                        return Ok(HistoryPage {
                            next: after.map(|c| encode_cursor(c.created_at, c.id)),
                            grants,
                        });
                    }
                }
            }
            if exhausted {
                return Ok(HistoryPage { grants, next: None });
            }
            if scanned >= TEXT_SCAN_BUDGET {
                // Budget spent: a short page, and the next one continues the scan.
                return Ok(HistoryPage {
                    grants,
                    next: after.map(|c| encode_cursor(c.created_at, c.id)),
                });
            }
        }
    }
}

#[async_trait::async_trait]
impl Backend for Dashboard {
    async fn request_options(&self, caller: &Caller) -> Result<RequestOptions, ApiError> {
        self.allow(caller, Operation::RequestGrant, None)?;
        let catalog = self.catalog().await?;
        Ok(RequestOptions {
            offers: self.offers(caller, &catalog),
            accounts: catalog.account_choices(),
            permission_sets: catalog.permission_set_choices(),
            portal_session_seconds: self.portal_seconds(),
            catalog_synced_at: catalog.synced_at,
        })
    }

    async fn other_paths(
        &self,
        caller: &Caller,
        account_id: &str,
        permission_set: &str,
    ) -> Result<Vec<OtherPath>, ApiError> {
        self.allow(caller, Operation::RequestGrant, None)?;
        let Caller::Person { id, .. } = caller else {
            return Err(denied(Denied::SignInRequired));
        };
        let account = app::domain::AccountId::parse(account_id)?;
        let ps = app::domain::PermissionSetName::parse(permission_set)?;
        let Some(arn) = self
            .services
            .store
            .catalog_permission_sets()
            .await
            .map_err(store_error)?
            .into_iter()
            .find(|p| p.name == ps.as_str())
            .map(|p| p.arn)
        else {
            return Err(ApiError::field(
                "permission_set",
                "is not in the synced catalog",
            ));
        };
        let ic = &self.services.identity_center;
        let user_id = match ic
            .find_user(self.services.config.identity_center.user_match, id.as_str())
            .await
        {
            Ok(u) => u,
            Err(IdentityError::NoMatch { .. }) => return Ok(Vec::new()),
            Err(e) => {
                tracing::warn!(error = %e, "other paths: cannot map the requester to Identity Center");
                return Err(ApiError::new(
                    "unavailable",
                    "Identity Center could not be asked; try again",
                ));
            }
        };
        let groups = ic.user_groups(&user_id).await.map_err(aws_error)?;
        let assignments = ic
            .list_assignments(account.as_str(), &arn)
            .await
            .map_err(aws_error)?;
        // A direct assignment that one of the person's own running grants made is
        // not another path.
        let own_running = self
            .services
            .store
            .list_grants(
                &GrantFilter {
                    requester: Some(id.to_string()),
                    account_id: Some(account.to_string()),
                    permission_set: Some(ps.to_string()),
                    states: vec![
                        GrantState::Provisioning,
                        GrantState::Active,
                        GrantState::Revoking,
                    ],
                    ..GrantFilter::default()
                },
                None,
                1,
            )
            .await
            .map_err(store_error)?;
        Ok(assignments
            .into_iter()
            .filter(|a| {
                (a.principal_type == "USER" && a.principal_id == user_id && own_running.is_empty())
                    || (a.principal_type == "GROUP" && groups.contains(&a.principal_id))
            })
            .map(|a| OtherPath {
                principal_type: a.principal_type,
                principal: a.principal_id,
            })
            .collect())
    }

    async fn request_grant(&self, caller: &Caller, form: RequestForm) -> Result<Grant, ApiError> {
        self.allow(caller, Operation::RequestGrant, None)?;
        let Caller::Person { id, .. } = caller else {
            return Err(denied(Denied::SignInRequired));
        };
        let catalog = self.catalog().await?;
        let account_id = app::domain::AccountId::parse(&form.account_id)?;
        let ps = app::domain::PermissionSetName::parse(&form.permission_set)?;
        if !catalog
            .nodes
            .iter()
            .any(|n| n.kind == NodeKind::Account && n.id == account_id.as_str())
        {
            return Err(ApiError::field(
                "account_id",
                "is not an account of the organisation (as last synced)",
            ));
        }
        if !catalog
            .permission_sets
            .iter()
            .any(|p| p.name == ps.as_str())
        {
            return Err(ApiError::field(
                "permission_set",
                "is not a permission set of the Identity Center instance (as last synced)",
            ));
        }
        let offers = self.offers(caller, &catalog);
        let break_glass = form.break_glass;
        let offer = offers.iter().find(|o| {
            o.account_id == account_id.as_str()
                && o.permission_set == ps.as_str()
                && o.break_glass == break_glass
        });
        // Without a matching offer the form's own rules still apply, and the policy
        // then says precisely why it refuses (which policies cover it, for whom).
        let request = form.parse(id, offer, self.services.clock.now())?;
        let access = &self.services.access;
        if break_glass {
            access.request_break_glass(caller, request).await
        } else {
            access.request(caller, request).await
        }
        .map_err(access_error)
    }

    async fn my_grants(&self, caller: &Caller) -> Result<Vec<Grant>, ApiError> {
        self.services
            .access
            .list_own(caller)
            .await
            .map_err(access_error)
    }

    async fn grant(&self, caller: &Caller, id: &str) -> Result<GrantDetail, ApiError> {
        let id = GrantId::parse(id)?;
        let grant = self
            .services
            .access
            .read(caller, id)
            .await
            .map_err(access_error)?;
        let store = &self.services.store;
        let approvals = self.approval_views(id).await?;
        let events = store
            .audit_events(Some(id), 0, 1000)
            .await
            .map_err(store_error)?;
        let chain = self.check_grant_chain(&events).await?;
        let other_paths = store
            .grant_aws(id)
            .await
            .map_err(store_error)?
            .and_then(|w| w.other_paths)
            .and_then(|p| serde_json::from_str::<Vec<serde_json::Value>>(&p).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|v| OtherPath {
                principal_type: v["principal_type"].as_str().unwrap_or("GROUP").to_owned(),
                principal: v["principal_id"].as_str().unwrap_or_default().to_owned(),
            })
            .collect();
        let evidence_service = &self.services.evidence;
        let evidence = evidence_service
            .summary(caller, id)
            .await
            .map_err(access_error)?;
        let activity_events = evidence_service
            .events(caller, id, None, GRANT_PAGE_EVENTS)
            .await
            .map_err(access_error)?;
        let investigation = evidence_service
            .investigation(caller, id)
            .await
            .map_err(access_error)?;
        let policy = self.services.auth.policy();
        let requester = &grant.request.requester;
        let may = |op| authorize(&policy, caller, op, Some(requester)).is_ok();
        let mine = matches!(caller, Caller::Person { id, .. } if id == requester);
        let already_decided = matches!(caller, Caller::Person { id, .. }
            if approvals.iter().any(|a| a.approver == id.as_str()));
        let state = grant.state;
        Ok(GrantDetail {
            permission_set_session_seconds: match grant.permission_set_session {
                Some(s) => Some(s.as_duration().num_seconds()),
                None => {
                    self.session_seconds_of(grant.request.permission_set.as_str())
                        .await?
                }
            },
            portal_session_seconds: grant
                .portal_session
                .map_or(self.portal_seconds(), |p| p.as_duration().num_seconds()),
            can_decide: state == GrantState::Pending
                && !already_decided
                && (may(Operation::ApproveGrant) || may(Operation::DenyGrant))
                && self.services.access.may_decide(caller, &grant),
            can_cancel: matches!(state, GrantState::Pending | GrantState::Approved)
                && may(Operation::CancelGrant),
            can_finish: mine && state == GrantState::Active && may(Operation::RevokeGrantEarly),
            can_extend: mine
                && matches!(state, GrantState::Active | GrantState::Approved)
                && may(Operation::RequestGrant),
            can_revoke: !mine && state == GrantState::Active && may(Operation::RevokeGrantEarly),
            can_review: !mine && grant.awaits_review() && may(Operation::ReviewGrant),
            audit: events
                .into_iter()
                .map(|e| AuditEntry {
                    seq: e.seq,
                    at: e.at,
                    actor: e.actor,
                    action: e.action,
                    from_state: e.from_state,
                    to_state: e.to_state,
                    reason: e.reason,
                    details: e.details,
                    hash: e.hash,
                })
                .collect(),
            grant,
            approvals,
            chain,
            other_paths,
            evidence,
            events: activity_events,
            investigation,
        })
    }

    async fn cancel(
        &self,
        caller: &Caller,
        id: &str,
        reason: Option<String>,
    ) -> Result<Grant, ApiError> {
        let id = GrantId::parse(id)?;
        Ok(self
            .services
            .access
            .cancel(caller, id, reason)
            .await
            .map_err(access_error)?
            .grant)
    }

    async fn revoke(
        &self,
        caller: &Caller,
        id: &str,
        reason: Option<String>,
    ) -> Result<Grant, ApiError> {
        let id = GrantId::parse(id)?;
        Ok(self
            .services
            .access
            .revoke_early(caller, id, reason)
            .await
            .map_err(access_error)?
            .grant)
    }

    async fn extend(
        &self,
        caller: &Caller,
        id: &str,
        duration: String,
        justification: String,
        ticket: String,
    ) -> Result<Grant, ApiError> {
        let gid = GrantId::parse(id)?;
        let grant = self
            .services
            .access
            .read(caller, gid)
            .await
            .map_err(access_error)?;
        let mine = matches!(caller, Caller::Person { id, .. } if *id == grant.request.requester);
        if !mine {
            return Err(ApiError::new(
                "forbidden",
                "only the grant's requester can ask to extend it",
            ));
        }
        if !matches!(grant.state, GrantState::Active | GrantState::Approved) {
            return Err(ApiError::new(
                "wrong_state",
                format!(
                    "only an approved or active grant can be extended; this one is {}",
                    grant.state.as_str()
                ),
            ));
        }
        self.request_grant(
            caller,
            RequestForm {
                account_id: grant.request.account_id.to_string(),
                permission_set: grant.request.permission_set.to_string(),
                duration,
                start_at: String::new(),
                justification,
                ticket,
                break_glass: false,
            },
        )
        .await
    }

    async fn decide(
        &self,
        caller: &Caller,
        id: &str,
        approve: bool,
        comment: Option<String>,
    ) -> Result<Grant, ApiError> {
        let id = GrantId::parse(id)?;
        let access = &self.services.access;
        let applied = if approve {
            access.approve(caller, id, comment).await
        } else {
            access.deny(caller, id, comment).await
        };
        Ok(applied.map_err(access_error)?.grant)
    }

    async fn inbox(&self, caller: &Caller) -> Result<Vec<InboxItem>, ApiError> {
        self.allow(caller, Operation::ReadInbox, None)?;
        let me = match caller {
            Caller::Person { id, .. } => id.clone(),
            Caller::Anonymous => return Err(denied(Denied::SignInRequired)),
        };
        // Pending requests whose policy names this caller as an approver (never
        // their own), oldest first.
        let pending = self
            .services
            .access
            .inbox(caller)
            .await
            .map_err(access_error)?;
        let sessions: HashMap<String, i64> = self
            .services
            .store
            .catalog_permission_sets()
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|p| (p.name, p.session_duration_seconds))
            .collect();
        let mut out = Vec::new();
        for g in pending {
            if g.request.requester == me {
                continue;
            }
            let approvals = self.approval_views(g.id).await?;
            if approvals.iter().any(|a| a.approver == me.as_str()) {
                continue;
            }
            out.push(InboxItem {
                recent: self.recent_use(&g).await?,
                permission_set_session_seconds: sessions
                    .get(g.request.permission_set.as_str())
                    .copied(),
                portal_session_seconds: self.portal_seconds(),
                grant: g,
                approvals,
            });
        }
        Ok(out)
    }

    async fn active_now(&self, caller: &Caller) -> Result<Vec<ActiveItem>, ApiError> {
        self.allow(caller, Operation::ListActiveGrants, None)?;
        let store = &self.services.store;
        let now = self.services.clock.now();
        let mut live = store
            .list_grants(
                &GrantFilter {
                    states: vec![GrantState::Active, GrantState::Revoking],
                    ..GrantFilter::default()
                },
                None,
                LIST_LIMIT,
            )
            .await
            .map_err(store_error)?;
        live.sort_by_key(|g| g.ends_at);
        let mut out: Vec<ActiveItem> = live
            .into_iter()
            .map(|grant| ActiveItem {
                grant,
                phase: "active".into(),
            })
            .collect();
        // Revoked grants whose sessions may still be alive: the tail.
        let tail_filter = GrantFilter {
            states: vec![GrantState::Revoked],
            created_from: Some(now - chrono::Duration::days(8)),
            ..GrantFilter::default()
        };
        let mut tails: Vec<Grant> = store
            .list_grants(&tail_filter, None, LIST_LIMIT)
            .await
            .map_err(store_error)?
            .into_iter()
            .filter(|g| g.real_end.is_some_and(|e| e > now))
            .collect();
        tails.sort_by_key(|g| g.real_end);
        out.extend(tails.into_iter().map(|grant| ActiveItem {
            grant,
            phase: "tail".into(),
        }));
        Ok(out)
    }

    async fn history(&self, caller: &Caller, query: HistoryQuery) -> Result<HistoryPage, ApiError> {
        self.history_inner(caller, query).await
    }

    async fn admin_status(&self, caller: &Caller) -> Result<AdminStatus, ApiError> {
        self.allow(caller, Operation::ReadAdminStatus, None)?;
        let store = &self.services.store;
        let now = self.services.clock.now();
        let catalog = self.catalog().await?.status();
        let oldest_due = store.reaper_due(now, 1).await.map_err(store_error)?;
        let lag_seconds = oldest_due
            .first()
            .and_then(due_since)
            .map_or(0, |since| (now - since).num_seconds().max(0));
        let problems = store
            .grant_aws_in_states(&[
                GrantState::Approved,
                GrantState::Provisioning,
                GrantState::Active,
                GrantState::Revoking,
            ])
            .await
            .map_err(store_error)?
            .into_iter()
            .filter_map(|(g, w)| {
                w.last_error.map(|last_error| ReaperProblem {
                    grant_id: g.id.to_string(),
                    state: g.state,
                    attempts: w.attempts,
                    last_error,
                    next_attempt_at: w.next_attempt_at,
                })
            })
            .collect();
        let drift = store
            .recent_audit_events(&["drift_removed", "drift_unmanaged"], 50)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|e| DriftReport {
                at: e.at,
                kind: e.action,
                details: serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null),
            })
            .collect();
        let active = store
            .list_grants(
                &GrantFilter {
                    states: vec![GrantState::Active],
                    ..GrantFilter::default()
                },
                None,
                LIST_LIMIT,
            )
            .await
            .map_err(store_error)?;
        Ok(AdminStatus {
            catalog,
            reaper: ReaperStatus {
                enabled: self.services.config.reaper.enabled,
                interval_seconds: self.services.config.reaper.interval.as_secs(),
                queue_depth: store.reaper_queue_depth(now).await.map_err(store_error)?,
                lag_seconds,
                problems,
            },
            drift,
            active,
        })
    }

    async fn policies(
        &self,
        caller: &Caller,
        query: PolicyQuery,
    ) -> Result<PoliciesView, ApiError> {
        self.allow(caller, Operation::ReadAdminStatus, None)?;
        let given = |s: &str| Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned);
        let (user, account, ps) = (
            given(&query.user),
            given(&query.account),
            given(&query.permission_set),
        );
        if let Some(a) = &account {
            app::domain::AccountId::parse(a)?;
        }
        let policy = &self.services.policy;
        let rows = policy
            .explain(user.as_deref(), account.as_deref(), ps.as_deref())
            .await
            .map_err(store_error)?;
        Ok(PoliciesView {
            reload: policy.reload_status(),
            policies: policy
                .current()
                .policies
                .iter()
                .map(|p| p.rule.clone())
                .collect(),
            rows,
        })
    }

    async fn review(
        &self,
        caller: &Caller,
        id: &str,
        comment: Option<String>,
    ) -> Result<Grant, ApiError> {
        let id = GrantId::parse(id)?;
        self.services
            .access
            .review(caller, id, comment)
            .await
            .map_err(access_error)
    }

    async fn sync_catalog(&self, caller: &Caller) -> Result<CatalogStatus, ApiError> {
        self.allow(caller, Operation::SyncCatalog, None)?;
        match self.services.sync_catalog().await {
            Ok(report) => {
                tracing::info!(?report, "catalog synced on request");
            }
            Err(e) => {
                tracing::warn!(error = %e, "catalog sync on request failed");
                return Err(ApiError::new(
                    "unavailable",
                    format!("the catalog could not be synced: {e}"),
                ));
            }
        }
        Ok(self.catalog().await?.status())
    }
}

/// The synced catalog as one call read it.
struct CatalogSnapshot {
    nodes: Vec<CatalogNode>,
    permission_sets: Vec<CatalogPermissionSet>,
    synced_at: Option<DateTime<Utc>>,
}

impl CatalogSnapshot {
    /// Accounts for the request form, by name.
    fn account_choices(&self) -> Vec<AccountChoice> {
        let mut accounts = account_choices(&self.nodes);
        accounts.sort_by_key(|a| a.name.to_lowercase());
        accounts
    }

    /// Permission sets for the request form, by name.
    fn permission_set_choices(&self) -> Vec<PermissionSetChoice> {
        let mut sets: Vec<PermissionSetChoice> = self
            .permission_sets
            .iter()
            .map(|p| PermissionSetChoice {
                name: p.name.clone(),
                description: p.description.clone(),
                session_seconds: p.session_duration_seconds,
            })
            .collect();
        sets.sort_by(|a, b| a.name.cmp(&b.name));
        sets
    }

    fn status(&self) -> CatalogStatus {
        CatalogStatus {
            synced_at: self.synced_at,
            accounts: self
                .nodes
                .iter()
                .filter(|n| n.kind == NodeKind::Account)
                .count() as u32,
            permission_sets: self.permission_sets.len() as u32,
        }
    }
}

/// When a due grant's work became due.
fn due_since(g: &Grant) -> Option<DateTime<Utc>> {
    match g.state {
        GrantState::Approved => Some(g.request.requested_start.unwrap_or(g.updated_at)),
        GrantState::Active => g.ends_at,
        _ => Some(g.updated_at),
    }
}

/// Accounts with their place in the organisation (`Root / Workloads / Prod`).
fn account_choices(nodes: &[CatalogNode]) -> Vec<AccountChoice> {
    let by_id: HashMap<&str, &CatalogNode> = nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Account)
        .map(|n| {
            let mut path = Vec::new();
            let mut parent = n.parent_id.as_deref();
            // Bounded: a malformed tree with a cycle cannot loop forever.
            for _ in 0..32 {
                let Some(p) = parent.and_then(|id| by_id.get(id)) else {
                    break;
                };
                path.push(p.name.clone());
                parent = p.parent_id.as_deref();
            }
            path.reverse();
            AccountChoice {
                id: n.id.clone(),
                name: n.name.clone(),
                path: path.join(" / "),
            }
        })
        .collect()
}

/// Parses a history filter's date: RFC 3339, or a day (`YYYY-MM-DD`, UTC; the start
/// of the day for `from`, its end for `to`).
fn parse_bound(field: &str, v: &str, end_of_day: bool) -> Result<Option<DateTime<Utc>>, ApiError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    let day = NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
        ApiError::field(
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

/// The history's store filter, and the words the justification must contain (matched
/// by [`Dashboard::history_text`], not by the database).
fn history_filter(q: &HistoryQuery) -> Result<(GrantFilter, Option<String>), ApiError> {
    let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let states = match q.state.trim() {
        "" | "all" => Vec::new(),
        s => vec![GrantState::parse(s).ok_or_else(|| {
            ApiError::field(
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
            return Err(ApiError::field("to", "is before from"));
        }
    }
    if q.text.chars().count() > 200 {
        return Err(ApiError::field("text", "must be at most 200 characters"));
    }
    Ok((
        GrantFilter {
            requester: text(&q.user),
            account_id: text(&q.account),
            permission_set: text(&q.permission_set),
            states,
            created_from: from,
            created_to: to,
        },
        text(&q.text),
    ))
}

/// `<created_at in microseconds>.<grant id>`: opaque to clients, checked on the way in.
fn encode_cursor(created_at: DateTime<Utc>, id: GrantId) -> String {
    format!("{}.{}", created_at.timestamp_micros(), id)
}

fn decode_cursor(c: &str) -> Result<Cursor, ApiError> {
    let bad = || ApiError::field("cursor", "is not a cursor this server returned");
    let (micros, id) = c.split_once('.').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let created_at = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(bad)?;
    let id = GrantId::parse(id).map_err(|_| bad())?;
    Ok(Cursor { created_at, id })
}

fn denied(d: Denied) -> ApiError {
    ApiError::new(d.code(), d.to_string())
}

fn store_error(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "storage failed while serving a request");
    ApiError::new("internal", "the database failed; the error was logged")
}

fn aws_error(e: IcError) -> ApiError {
    tracing::warn!(error = %e, "an Identity Center call failed while serving a request");
    ApiError::new(
        "unavailable",
        "Identity Center could not be asked; try again",
    )
}

pub fn access_error(e: AccessError) -> ApiError {
    match e {
        AccessError::Denied(d) => denied(d),
        AccessError::Grant(GrantError::NotFound(id)) => {
            ApiError::new("not_found", format!("there is no grant {id}"))
        }
        AccessError::Grant(GrantError::Refused(r)) => refused(r),
        AccessError::Grant(GrantError::Busy) => ApiError::new("busy", e.to_string()),
        AccessError::Grant(GrantError::Store(s)) => store_error(s),
        AccessError::Grant(GrantError::Policy(r)) => ApiError {
            code: r.code().to_owned(),
            message: r.to_string(),
            field: r.field().map(str::to_owned),
        },
        AccessError::Grant(GrantError::NoReviewOwed(_)) => {
            ApiError::new("no_review_owed", e.to_string())
        }
    }
}

fn refused(r: Refusal) -> ApiError {
    ApiError::new(r.code(), r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = GrantId(uuid::Uuid::new_v4());
        let at = DateTime::<Utc>::from_timestamp_micros(1_764_300_000_123_456).expect("time");
        let c = decode_cursor(&encode_cursor(at, id)).expect("decodes");
        assert_eq!((c.created_at, c.id), (at, id));
        for bad in ["", "x", "1.2", "abc.def", "1764300000.not-a-uuid"] {
            let e = decode_cursor(bad).expect_err(bad);
            assert_eq!(e.field.as_deref(), Some("cursor"));
        }
    }

    #[test]
    fn history_filters_name_the_wrong_field() {
        let q = |f: fn(&mut HistoryQuery)| {
            let mut q = HistoryQuery::default();
            f(&mut q);
            history_filter(&q).expect_err("refused").field
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
        let (ok, _) = history_filter(&HistoryQuery {
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

    #[test]
    fn accounts_carry_their_path() {
        let node = |id: &str, kind, name: &str, parent: Option<&str>| CatalogNode {
            id: id.into(),
            kind,
            name: name.into(),
            parent_id: parent.map(Into::into),
        };
        let nodes = vec![
            node("r-1", NodeKind::Root, "Root", None),
            node("ou-1", NodeKind::Ou, "Workloads", Some("r-1")),
            node("ou-2", NodeKind::Ou, "Prod", Some("ou-1")),
            node("111122223333", NodeKind::Account, "payments", Some("ou-2")),
        ];
        let a = account_choices(&nodes);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].path, "Root / Workloads / Prod");
    }
}
