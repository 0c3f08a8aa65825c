//! The grant domain: validated values, the lifecycle state machine and the window
//! arithmetic. No I/O and no wall clock: everything here compiles to wasm32 and runs
//! the same in the browser (the request form's preview) and on the server.

pub mod access;
pub mod actions;
pub mod audit;
pub mod catalog;
pub mod decision;
pub mod evidence;
pub mod extension;
pub mod fields;
pub mod grant;
pub mod lifecycle;
pub mod notification;
pub mod policy;
pub mod session_duration;
pub mod sessions;
pub mod window;

pub use access::{authorize, authorize_role, AccessPolicy, Caller, Denied, Operation};
pub use actions::{ActionCtx, ActionRefusal, DecisionSoFar, GrantAction, GrantActions};
pub use audit::{AuditAction, VerificationState};
pub use catalog::{CatalogNode, CatalogPermissionSet, NodeKind};
pub use decision::Decision;
pub use evidence::{
    ActivityEvent, ActivityFlag, ConsoleLinks, EvidenceSummary, Indicator, InvestigationSeverity,
    InvestigationStatus, InvestigationSummary, IpHistory, SummaryBuilder,
};
pub use extension::{AccessChain, ChainLink};
pub use fields::{
    fmt_minutes, AccountId, Comment, FieldError, GrantDuration, Justification, PermissionSetArn,
    PermissionSetName, PersonId, Reason, ReviewComment, TicketRef, UserName,
};
pub use grant::{Grant, GrantId, GrantRequest, GrantWindows, IdentityUser, OtherPath};
pub use lifecycle::{
    decide, Action, Actor, ApprovalProgress, GrantState, Outcome, Refusal, RevokeCause, Role,
    RoleSet, TransitionCtx,
};
pub use notification::{Audience, NotificationKind};
pub use policy::{
    ApprovalRule, Entitlement, ExplainRow, Policy, PolicyRefusal, ReloadStatus, TicketRule,
};
pub use session_duration::{
    format_human, parse_iso8601, PortalSession, SessionDuration, SessionDurationError,
};
pub use sessions::SessionsClose;
pub use window::{Interval, Observed, WindowError, WindowInputs, Windows};
