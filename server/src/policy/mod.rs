//! Policy as code: who may ask for which permission set in which accounts, for how
//! long, approved by whom (docs/policy.md).
//!
//! - [`model`]: the parsed policies ([`PolicySet`], [`CompiledPolicy`]) and one problem
//!   of the file, shared by the two below;
//! - [`file`]: the TOML file → a validated [`PolicySet`], with every problem named by
//!   policy and key;
//! - [`resolve`]: against the catalog, pure and table-tested: which policy decides a
//!   request, what a person may ask for, "who can request what, approved by whom",
//!   and what the policies name that the catalog lacks;
//! - [`PolicyService`] (here): the policy in force, its reload on SIGHUP and on file
//!   change (a bad file keeps the previous policy and is reported in
//!   [`ReloadStatus`]), and the checks against the synced catalog.
//!
//! Without `policy.file`, Timebox runs with no policy: nobody may ask for access, and
//! every request is refused with [`PolicyRefusal::NoPolicyFile`].

pub mod file;
pub mod model;
pub mod resolve;

use crate::clock::Clock;
use crate::config::PolicyConfig;
use crate::store::{NewAuditEvent, Store, StoreError};
use app::domain::{
    AuditAction, Caller, Entitlement, ExplainRow, GrantRequest, Operation, PolicyRefusal,
    ReloadStatus,
};
pub use file::PolicyFileError;
pub use model::{CompiledPolicy, PolicyProblem, PolicySet};
pub use resolve::{Ask, Catalog};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// The policy in force and the state of its file, shared by every clone.
#[derive(Debug, Clone)]
pub struct PolicyService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `None`: no policy file is configured.
    file: Option<PathBuf>,
    poll_interval: Duration,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    state: RwLock<State>,
}

#[derive(Debug)]
struct State {
    set: Arc<PolicySet>,
    status: ReloadStatus,
    /// The file's (modification time, length) when it was last read.
    fingerprint: Option<(SystemTime, u64)>,
}

/// Why the policy file could not be used (at start-up: Timebox does not start).
#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    #[error(
        "the policy file {} could not be read: {source}; check policy.file \
         (TIMEBOX_POLICY__FILE) and that the user running Timebox may read it",
        path.display()
    )]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] PolicyFileError),
    #[error("could not read the catalog to check the policy file: {0}")]
    Store(#[from] StoreError),
}

/// A request's deciding policy and what it sets on the grant.
#[derive(Debug, Clone)]
pub struct Decided {
    pub policy: CompiledPolicy,
    /// The SHA-256 of the policy file it came from.
    pub file_sha256: String,
}

/// The file's text, with its fingerprint taken *before* the read: a write that lands
/// during or after the read changes the fingerprint the poll compares against, so a
/// half-written file read once is read again when the write completes.
fn read(path: &Path) -> Result<(String, Option<(SystemTime, u64)>), PolicyLoadError> {
    let unreadable = |source| PolicyLoadError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let fp = fingerprint(path);
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    Ok((text, fp))
}

fn fingerprint(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Parses `text` as the file `file` (for messages).
fn parse_named(file: &str, text: &str) -> Result<PolicySet, PolicyFileError> {
    use sha2::Digest;
    let mut set = file::parse(text).map_err(|problems| PolicyFileError {
        file: file.to_owned(),
        problems,
    })?;
    set.sha256 = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    Ok(set)
}

/// Validates the policy file named by the configuration without a database (what
/// `timebox --check-config` runs): the file's own rules, not the catalog checks.
pub fn check_file(config: &PolicyConfig) -> Result<usize, PolicyLoadError> {
    let Some(path) = &config.file else {
        return Ok(0);
    };
    let (text, _) = read(path)?;
    Ok(parse_named(&path.display().to_string(), &text)?.len())
}

impl PolicyService {
    /// Loads the configured policy file at start-up. A file that cannot be read or
    /// breaks a rule of the file is an error (Timebox does not start). References the
    /// synced catalog does not know are logged and shown in [`ReloadStatus`] but do
    /// not stop start-up: the stored catalog may be older than the file, and the
    /// server that would refresh it has to run first (see docs/policy.md).
    pub async fn start(
        config: &PolicyConfig,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, PolicyLoadError> {
        let Some(path) = config.file.clone() else {
            tracing::warn!("no policy file is configured (policy.file): nobody may ask for access");
            return Ok(Self::with_set(
                None,
                PolicySet::default(),
                None,
                config.poll_interval,
                store,
                clock,
            ));
        };
        let (text, fp) = read(&path)?;
        let set = parse_named(&path.display().to_string(), &text)?;
        tracing::info!(file = %path.display(), policies = set.len(), sha256 = %set.sha256, "policy loaded");
        let service = Self::with_set(Some(path), set, fp, config.poll_interval, store, clock);
        service.recheck_catalog().await?;
        service.record_load().await?;
        Ok(service)
    }

    /// A service over policy text with no file behind it (tests, tools). `reload`
    /// keeps it as it is.
    pub fn from_text(
        text: &str,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, PolicyFileError> {
        let set = parse_named("(text)", text)?;
        Ok(Self::with_set(
            None,
            set,
            None,
            Duration::from_secs(5),
            store,
            clock,
        ))
    }

    fn with_set(
        file: Option<PathBuf>,
        set: PolicySet,
        fp: Option<(SystemTime, u64)>,
        poll_interval: Duration,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let now = clock.now();
        let status = ReloadStatus {
            file: file.as_ref().map(|p| p.display().to_string()),
            loaded_at: Some(now),
            policies: set.len(),
            last_attempt_at: Some(now),
            last_error: None,
            catalog_problems: Vec::new(),
        };
        Self {
            inner: Arc::new(Inner {
                file,
                poll_interval,
                store,
                clock,
                state: RwLock::new(State {
                    set: Arc::new(set),
                    status,
                    fingerprint: fp,
                }),
            }),
        }
    }

    fn state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn state_mut(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.inner
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The policies in force.
    pub fn current(&self) -> Arc<PolicySet> {
        self.state().set.clone()
    }

    /// The file, when the policy was loaded, and whether the last reload failed.
    pub fn reload_status(&self) -> ReloadStatus {
        self.state().status.clone()
    }

    /// Whether a policy file is configured (without one nobody may ask for access).
    pub fn is_configured(&self) -> bool {
        self.inner.file.is_some() || !self.current().is_empty()
    }

    /// The synced catalog as policy needs it.
    pub async fn catalog(&self) -> Result<Catalog, StoreError> {
        let store = &self.inner.store;
        let nodes = store.catalog_nodes().await?;
        let sets = store
            .catalog_permission_sets()
            .await?
            .into_iter()
            .map(|p| p.name)
            .collect();
        let synced = store.catalog_synced_at().await?.is_some();
        Ok(Catalog::new(nodes, sets, synced))
    }

    /// The (account, permission set name) pairs the policies in force can grant.
    pub async fn grantable(
        &self,
    ) -> Result<std::collections::BTreeSet<(String, String)>, StoreError> {
        let catalog = self.catalog().await?;
        Ok(resolve::grantable(&self.current(), &catalog))
    }

    /// Re-reads the file. A file that cannot be read, breaks a rule, or names a
    /// permission set, account or OU the synced catalog does not have is refused:
    /// the previous policy stays in force, the refusal is logged and recorded in
    /// [`ReloadStatus::last_error`]. Without a file, nothing happens.
    pub async fn reload(&self) -> Result<(), PolicyLoadError> {
        let Some(path) = self.inner.file.clone() else {
            return Ok(());
        };
        let now = self.inner.clock.now();
        let before = fingerprint(&path);
        let result = self.load_checked(&path).await;
        {
            let mut state = self.state_mut();
            state.status.last_attempt_at = Some(now);
            match result {
                Ok((set, fp)) => {
                    tracing::info!(file = %path.display(), policies = set.len(), sha256 = %set.sha256, "policy reloaded");
                    state.status.loaded_at = Some(now);
                    state.status.policies = set.len();
                    state.status.last_error = None;
                    state.status.catalog_problems = Vec::new();
                    state.set = Arc::new(set);
                    state.fingerprint = fp;
                }
                Err(e) => {
                    tracing::error!(error = %e, "policy reload refused; the previous policy stays in force");
                    state.status.last_error = Some(e.to_string());
                    // Remember this version so the poll does not report it again (taken
                    // before the read: a write still landing is read again).
                    state.fingerprint = before;
                    return Err(e);
                }
            }
        }
        if let Err(e) = self.record_load().await {
            tracing::error!(error = %e, "the policy reload could not be recorded in the audit log");
        }
        Ok(())
    }

    /// Records in the audit chain that the file with this SHA-256 is in force, unless
    /// the last recorded load was of the same text (a restart changes nothing).
    async fn record_load(&self) -> Result<(), StoreError> {
        let set = self.current();
        let store = &self.inner.store;
        let last = store
            .recent_audit_events(&[AuditAction::PolicyLoaded], 1)
            .await?;
        let previous = last.first().and_then(|e| {
            serde_json::from_str::<serde_json::Value>(&e.details)
                .ok()
                .and_then(|d| d["sha256"].as_str().map(str::to_owned))
        });
        if previous.as_deref() == Some(set.sha256.as_str()) {
            return Ok(());
        }
        store
            .append_audit(NewAuditEvent {
                grant_id: None,
                at: self.inner.clock.now(),
                actor: "timebox".to_owned(),
                action: AuditAction::PolicyLoaded,
                from_state: None,
                to_state: None,
                reason: None,
                details: serde_json::json!({
                    "file": self.inner.file.as_ref().map(|p| p.display().to_string()),
                    "sha256": set.sha256,
                    "previous_sha256": previous,
                    "policies": set.policies.iter().map(|p| p.rule.name.clone()).collect::<Vec<_>>(),
                }),
            })
            .await
            .map(|_| ())
    }

    async fn load_checked(
        &self,
        path: &Path,
    ) -> Result<(PolicySet, Option<(SystemTime, u64)>), PolicyLoadError> {
        let (text, fp) = read(path)?;
        let name = path.display().to_string();
        let set = parse_named(&name, &text)?;
        let problems = resolve::catalog_problems(&set, &self.catalog().await?);
        if !problems.is_empty() {
            return Err(PolicyFileError {
                file: name,
                problems,
            }
            .into());
        }
        Ok((set, fp))
    }

    /// Checks the policy in force against the synced catalog and records what it does
    /// not know in [`ReloadStatus::catalog_problems`] (start-up, and after every
    /// catalog sync). An entry naming something unknown matches nothing.
    pub async fn recheck_catalog(&self) -> Result<(), StoreError> {
        let catalog = self.catalog().await?;
        let problems: Vec<String> = resolve::catalog_problems(&self.current(), &catalog)
            .iter()
            .map(ToString::to_string)
            .collect();
        for p in &problems {
            tracing::warn!(problem = %p, "the policy names something the catalog does not have");
        }
        self.state_mut().status.catalog_problems = problems;
        Ok(())
    }

    /// Reloads when the file's modification time or length changed since it was read.
    /// True when a reload was attempted.
    pub async fn reload_if_changed(&self) -> bool {
        let Some(path) = self.inner.file.clone() else {
            return false;
        };
        let now = fingerprint(&path);
        if now.is_none() || now == self.state().fingerprint {
            return false;
        }
        let _ = self.reload().await;
        true
    }

    /// Reloads on SIGHUP and when the file changes (polled every
    /// `policy.poll_interval`), until `stop` turns true.
    pub fn spawn_watcher(
        &self,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            if me.inner.file.is_none() {
                return;
            }
            #[cfg(unix)]
            let mut hup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut tick = tokio::time::interval(me.inner.poll_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                #[cfg(unix)]
                let hangup = async {
                    match hup.as_mut() {
                        Some(s) => {
                            s.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                #[cfg(not(unix))]
                let hangup = std::future::pending::<()>();
                enum Wake {
                    Hangup,
                    Tick,
                    Stop,
                }
                // The select only says what woke us; the reload runs after it, so no
                // branch output (a watch guard is not Send) lives across the await.
                let wake = tokio::select! {
                    () = hangup => Wake::Hangup,
                    _ = tick.tick() => Wake::Tick,
                    _ = stop.wait_for(|s| *s) => Wake::Stop,
                };
                match wake {
                    Wake::Hangup => {
                        tracing::info!("SIGHUP: reloading the policy file");
                        let _ = me.reload().await;
                    }
                    Wake::Tick => {
                        me.reload_if_changed().await;
                    }
                    Wake::Stop => break,
                }
            }
        })
    }

    /// The policy that decides `request` for a requester with `groups`, after holding
    /// the request to its terms (duration, ticket, justification).
    pub async fn decide(
        &self,
        request: &GrantRequest,
        groups: &[String],
        break_glass: bool,
    ) -> Result<Decided, PolicyDecisionError> {
        if !self.is_configured() {
            return Err(PolicyRefusal::NoPolicyFile.into());
        }
        let catalog = self.catalog().await?;
        let set = self.current();
        let policy = resolve::resolve(
            &set,
            &catalog,
            &Ask {
                person: request.requester.as_str(),
                groups,
                account_id: request.account_id.as_str(),
                permission_set: request.permission_set.as_str(),
                break_glass,
            },
        )?;
        resolve::check(policy, request)?;
        Ok(Decided {
            policy: policy.clone(),
            file_sha256: set.sha256.clone(),
        })
    }

    /// "What I can ask for": empty for a caller who may not ask for access at all.
    pub fn entitlements_for(&self, caller: &Caller, catalog: &Catalog) -> Vec<Entitlement> {
        let Caller::Person { id, groups, .. } = caller else {
            return Vec::new();
        };
        if app::domain::authorize(
            &app::domain::AccessPolicy::default(),
            caller,
            Operation::RequestGrant,
            None,
        )
        .is_err()
        {
            return Vec::new();
        }
        resolve::entitlements(&self.current(), catalog, id.as_str(), groups)
    }

    /// "Who can request what, approved by whom", filtered by requester (`user:<id>`,
    /// `group:<name>` or a bare id), account id and permission set; see
    /// [`resolve::explain`].
    pub async fn explain(
        &self,
        requester: Option<&str>,
        account: Option<&str>,
        permission_set: Option<&str>,
    ) -> Result<Vec<ExplainRow>, StoreError> {
        let catalog = self.catalog().await?;
        Ok(resolve::explain(
            &self.current(),
            &catalog,
            requester,
            account,
            permission_set,
        ))
    }

    /// Whether the person is named by the grant's deciding policy as an approver (or,
    /// for break-glass, a reviewer). A grant whose policy is no longer in the file has
    /// no named approvers.
    pub fn names_approver(&self, policy: Option<&str>, person: &str, groups: &[String]) -> bool {
        let set = self.current();
        policy
            .and_then(|name| set.get(name))
            .is_some_and(|p| p.names_approver(person, groups))
    }
}

/// Why [`PolicyService::decide`] did not name a policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyDecisionError {
    #[error(transparent)]
    Refused(#[from] PolicyRefusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}
