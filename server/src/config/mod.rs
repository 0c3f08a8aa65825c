//! Timebox configuration: one TOML file plus `TIMEBOX_*` environment overrides,
//! every value checked at start-up. One file per section, each reading its keys with
//! the [`kit`] (which knows no section); this module joins them into [`Config`].
//!
//! Layers, later ones winning key by key:
//!
//! 1. built-in defaults (see [`Config::default`]);
//! 2. the TOML file: the path given to [`load`], else the path in `TIMEBOX_CONFIG`,
//!    else `./timebox.toml` if it exists (a path that was asked for must exist);
//! 3. environment variables: `TIMEBOX_` + section + `__` + key, such as
//!    `TIMEBOX_DATABASE__URL` or `TIMEBOX_IDENTITY_CENTER__PORTAL_SESSION=12h`.
//!    Values are taken as plain text and parsed according to the key they set, so
//!    a password such as `0123` keeps its leading zero.
//!
//! A value that is wrong, or a key nobody knows, stops start-up with a
//! [`ConfigError`] that names the key (as a dotted path like
//! `identity_center.portal_session`), says where the value came from, and how to fix
//! it. Every problem found is reported at once, not only the first.
//!
//! Secrets are [`Secret`]s, which never print. A secret key `foo` can also be given
//! as `foo_file = "/path"`; see [`resolve_secret`]. An empty value for an optional
//! key means "not set", so an environment variable can clear a file's value.
//!
//! A new key is one `keys.value(…)` (or `duration`, `optional`, `secret`) line in its
//! section's `read`, which gives its name, default and parser at once. The keys, their
//! defaults and their ranges are listed in `timebox.example.toml` and
//! `docs/configuration.md`; keep the three in step (the tests check that both mention
//! every key).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use figment::providers::{Format, Toml};
use figment::Figment;

mod audit;
mod auth;
mod aws;
mod database;
mod env;
mod evidence;
mod identity_center;
mod kit;
mod log;
mod notify;
mod policy;
mod reaper;
mod revocation;
mod server;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

pub use audit::{AuditConfig, CheckpointWebhookConfig, S3Location};
pub use auth::{OidcConfig, SessionConfig};
pub use aws::AwsConfig;
pub use database::DatabaseConfig;
pub use env::EnvOverrides;
pub use evidence::{is_graph_arn, EvidenceConfig, EvidenceSource};
pub use identity_center::{IdentityCenterConfig, UserMatch};
pub use kit::{
    edit_distance, env_var_name, resolve_secret, ConfigError, Secret, SectionKeys, ENV_PREFIX,
    ENV_SEPARATOR,
};
pub use log::{LogConfig, LogFormat};
pub use notify::{EmailConfig, NotifyConfig, SlackConfig, SmtpTls, WebhookConfig};
pub use policy::PolicyConfig;
pub use reaper::ReaperConfig;
pub use revocation::{CloseSessions, RevocationConfig};
pub use server::ServerConfig;

/// The file read when [`load`] is given no path and `TIMEBOX_CONFIG` is not set.
pub const DEFAULT_CONFIG_FILE: &str = "timebox.toml";
/// Environment variable naming the configuration file. It is not an override and
/// is skipped by [`EnvOverrides`].
pub const CONFIG_PATH_ENV: &str = "TIMEBOX_CONFIG";

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub identity_center: IdentityCenterConfig,
    pub aws: AwsConfig,
    pub reaper: ReaperConfig,
    /// `[revocation]`: closing the sessions of revoked grants.
    pub revocation: RevocationConfig,
    pub log: LogConfig,
    /// `[oidc]`; `None` when `oidc.issuer` is not set (nobody can sign in).
    pub oidc: Option<OidcConfig>,
    pub session: SessionConfig,
    /// `[notify]` and its channels.
    pub notify: NotifyConfig,
    /// `[evidence]`: activity collection and Detective.
    pub evidence: EvidenceConfig,
    pub policy: PolicyConfig,
    /// `[audit]`: signed checkpoints of the audit chain.
    pub audit: AuditConfig,
}

/// Every section's defaults: what its `read` gives for no values at all.
macro_rules! defaults_from_read {
    ($($section:ty => $read:expr),* $(,)?) => {$(
        impl Default for $section {
            fn default() -> Self {
                kit::defaults($read)
            }
        }
    )*};
}

defaults_from_read! {
    Config => Config::read,
    ServerConfig => ServerConfig::read,
    DatabaseConfig => DatabaseConfig::read,
    IdentityCenterConfig => IdentityCenterConfig::read,
    AwsConfig => AwsConfig::read,
    ReaperConfig => ReaperConfig::read,
    RevocationConfig => RevocationConfig::read,
    LogConfig => LogConfig::read,
    SessionConfig => |keys| SessionConfig::read(keys, &ServerConfig::default().public_url),
    NotifyConfig => NotifyConfig::read,
    EvidenceConfig => |keys| EvidenceConfig::read(keys, None),
    PolicyConfig => PolicyConfig::read,
    AuditConfig => AuditConfig::read,
}

impl Config {
    /// Every section, in the order of the file. A section that depends on another
    /// (the sign-in redirect on the public address, the evidence region on Identity
    /// Center's) is read after it.
    fn read(keys: &mut kit::Keys<'_, '_>) -> Self {
        let server = keys.section("server", ServerConfig::read);
        let database = keys.section("database", DatabaseConfig::read);
        let identity_center = keys.section("identity_center", IdentityCenterConfig::read);
        let region = identity_center.region.as_deref();
        Config {
            aws: keys.section("aws", AwsConfig::read),
            reaper: keys.section("reaper", ReaperConfig::read),
            revocation: keys.section("revocation", RevocationConfig::read),
            log: keys.section("log", LogConfig::read),
            oidc: keys.section("oidc", |k| OidcConfig::read(k, &server.public_url)),
            session: keys.section("session", |k| SessionConfig::read(k, &server.public_url)),
            notify: keys.section("notify", NotifyConfig::read),
            evidence: keys.section("evidence", |k| EvidenceConfig::read(k, region)),
            policy: keys.section("policy", PolicyConfig::read),
            audit: keys.section("audit", AuditConfig::read),
            server,
            database,
            identity_center,
        }
    }
}

/// Every section and its keys, as they are written in the file (sub-sections such as
/// `notify.slack` on their own). Read from the sections themselves.
pub fn keys() -> &'static [SectionKeys] {
    static KEYS: LazyLock<Vec<SectionKeys>> = LazyLock::new(|| kit::list_keys(Config::read));
    &KEYS
}

/// Loads the configuration: defaults, then the TOML file, then `TIMEBOX_*`
/// environment variables, then validation.
///
/// `path`: the file to read, which must exist. With `None`, the file named by
/// `TIMEBOX_CONFIG` (which must exist) or else `./timebox.toml` if there is one.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    load_from(figment(path)?)
}

/// The layered sources [`load`] reads (file, then environment), before validation.
pub fn figment(path: Option<&Path>) -> Result<Figment, ConfigError> {
    let mut figment = Figment::new();
    if let Some(file) = config_path(path)? {
        figment = figment.merge(Toml::file_exact(file));
    }
    Ok(figment.merge(EnvOverrides::from_process()))
}

/// Which file [`load`] reads for `path`, if any; fails when a file that was asked
/// for (by `path` or `TIMEBOX_CONFIG`) is missing or unreadable.
pub fn config_path(path: Option<&Path>) -> Result<Option<PathBuf>, ConfigError> {
    let (path, required) = match path {
        Some(path) => (path.to_path_buf(), true),
        None => match std::env::var_os(CONFIG_PATH_ENV).filter(|p| !p.is_empty()) {
            Some(path) => (PathBuf::from(path), true),
            None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        },
    };
    match std::fs::read_to_string(&path) {
        Ok(_) => Ok(Some(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound && !required => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ConfigError::FileNotFound { path }),
        Err(source) => Err(ConfigError::FileUnreadable { path, source }),
    }
}

/// Validates whatever `figment` provides (on top of the defaults). Tests and tools
/// build the figment from strings: `Figment::from(Toml::string(…))`, merged with
/// [`EnvOverrides::from_vars`].
pub fn load_from(figment: Figment) -> Result<Config, ConfigError> {
    kit::load(&figment, keys(), Config::read)
}
