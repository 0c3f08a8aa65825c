//! The Identity Center catalog as Timebox caches it: the permission sets and the
//! organisation tree (root, organisational units, accounts). Synced from AWS by the
//! server, read by the policy and the pages.

use serde::Serialize;

/// A permission set as the catalog caches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogPermissionSet {
    pub arn: String,
    pub name: String,
    pub description: Option<String>,
    /// `SessionDuration`, in seconds.
    pub session_duration_seconds: i64,
}

/// What a node of the organisation tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Root,
    Ou,
    Account,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Root => "root",
            NodeKind::Ou => "ou",
            NodeKind::Account => "account",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [NodeKind::Root, NodeKind::Ou, NodeKind::Account]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One root, organisational unit or account, with its parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogNode {
    pub id: String,
    pub kind: NodeKind,
    pub name: String,
    pub parent_id: Option<String>,
}
