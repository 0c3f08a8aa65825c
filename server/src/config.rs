//! Timebox configuration: one TOML file plus `TIMEBOX_*` environment overrides,
//! every value checked at start-up.
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
//! The keys, their defaults and their ranges are listed in `timebox.example.toml`
//! and `docs/configuration.md`; keep the three in step (the tests check that both
//! mention every key).

use std::fmt::{self, Write as _};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use app::domain::PortalSession;
use figment::error::Kind;
use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Map, Num, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::Deserialize;

mod auth;
mod evidence;
mod notify;
pub use auth::{OidcConfig, SessionConfig};
pub use evidence::{is_graph_arn, EvidenceConfig, EvidenceSource};
pub use notify::{EmailConfig, NotifyConfig, SlackConfig, SmtpTls, WebhookConfig};

/// The file read when [`load`] is given no path and `TIMEBOX_CONFIG` is not set.
pub const DEFAULT_CONFIG_FILE: &str = "timebox.toml";
/// Prefix of every environment override.
pub const ENV_PREFIX: &str = "TIMEBOX_";
/// Separates the section from the key in an environment override.
pub const ENV_SEPARATOR: &str = "__";
/// Environment variable naming the configuration file. It is not an override and
/// is skipped by [`EnvOverrides`].
pub const CONFIG_PATH_ENV: &str = "TIMEBOX_CONFIG";

/// Every section and its keys, as they are written in the file. Used for
/// "did you mean" hints; a test checks it against the parser.
const KEYS: &[(&str, &[&str])] = &[
    (
        "server",
        &["bind", "public_url", "site_root", "shutdown_grace"],
    ),
    (
        "database",
        &["url", "max_connections", "password", "password_file"],
    ),
    (
        "identity_center",
        &[
            "portal_session",
            "region",
            "instance_arn",
            "identity_store_id",
            "user_match",
            "catalog_refresh",
        ],
    ),
    (
        "aws",
        &[
            "endpoint_url",
            "sso_admin_endpoint_url",
            "identity_store_endpoint_url",
            "organizations_endpoint_url",
            "sts_endpoint_url",
            "cloudtrail_endpoint_url",
            "detective_endpoint_url",
            "iam_endpoint_url",
            "max_calls_per_second",
            "call_timeout",
        ],
    ),
    ("reaper", &["interval", "enabled"]),
    ("log", &["format", "level"]),
    ("oidc", auth::OIDC_KEYS),
    ("session", auth::SESSION_KEYS),
    ("policy", &["file", "poll_interval"]),
    ("evidence", evidence::EVIDENCE_KEYS),
    ("notify", notify::NOTIFY_KEYS),
    ("notify.slack", notify::SLACK_KEYS),
    ("notify.email", notify::EMAIL_KEYS),
    ("notify.webhook", notify::WEBHOOK_KEYS),
];

const MAX_SHUTDOWN_GRACE: Duration = Duration::from_secs(10 * 60);
const MIN_REAPER_INTERVAL: Duration = Duration::from_secs(1);
const MAX_REAPER_INTERVAL: Duration = Duration::from_secs(10 * 60);
const MAX_DB_CONNECTIONS: u32 = 200;
const PORTAL_SESSION_FIX: &str = "set it to your Identity Center instance's session duration \
     (Settings → Authentication → Session duration)";

// ---------------------------------------------------------------------------------
// The typed configuration
// ---------------------------------------------------------------------------------

/// The whole, validated configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub identity_center: IdentityCenterConfig,
    pub aws: AwsConfig,
    pub reaper: ReaperConfig,
    pub log: LogConfig,
    /// `[oidc]`; `None` when `oidc.issuer` is not set (nobody can sign in).
    pub oidc: Option<OidcConfig>,
    pub session: SessionConfig,
    /// `[notify]` and its channels.
    pub notify: NotifyConfig,
    /// `[evidence]`: activity collection and Detective.
    pub evidence: EvidenceConfig,
    pub policy: PolicyConfig,
}

/// `[policy]`: the policy file (docs/policy.md).
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// The policy file. `None`: nobody may ask for access (start-up logs a warning).
    pub file: Option<PathBuf>,
    /// How often the file's modification time is checked for a reload, 1s..=10m.
    /// Default 5s. (SIGHUP reloads at once.)
    pub poll_interval: Duration,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            file: None,
            poll_interval: Duration::from_secs(5),
        }
    }
}

/// `[server]`: where Timebox listens and how it is reached.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address and port to listen on. Default `127.0.0.1:3000`.
    pub bind: SocketAddr,
    /// The address people use in their browser, without a trailing slash.
    /// Default `http://127.0.0.1:3000`.
    pub public_url: String,
    /// The directory holding the built site (`cargo leptos build` output: `pkg/` and
    /// the static assets). Default `target/site`, relative to the working directory.
    pub site_root: String,
    /// How long in-flight requests may run after a shutdown signal. Default 10s.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 3000)),
            public_url: "http://127.0.0.1:3000".to_owned(),
            site_root: "target/site".to_owned(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// `[database]`: where grants and the audit log are stored.
///
/// `password` is kept apart from `url` so the URL can be logged and printed; the
/// store either hands [`DatabaseConfig::connect_url`] to sqlx or sets the password on
/// its connect options. `Debug` hides the password and any password in `url`.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// `sqlite:…` or `postgres://…` / `postgresql://…`. Default `sqlite://timebox.db`.
    pub url: String,
    /// Connection-pool size, 1..=200. Default 10.
    pub max_connections: u32,
    /// PostgreSQL password, from `database.password` or `database.password_file`.
    /// Only allowed with a PostgreSQL URL that holds no password of its own.
    pub password: Option<Secret>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://timebox.db".to_owned(),
            max_connections: 10,
            password: None,
        }
    }
}

impl DatabaseConfig {
    /// Whether `url` names a SQLite database.
    pub fn is_sqlite(&self) -> bool {
        self.url.starts_with("sqlite:")
    }

    /// Whether `url` names a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")
    }

    /// The URL to connect with: `url` with `password` (percent-encoded) put in its
    /// user-info part when one is configured, else `url` as it is.
    pub fn connect_url(&self) -> Secret {
        let Some(password) = &self.password else {
            return Secret::new(self.url.clone());
        };
        if !self.is_postgres() || url_has_password(&self.url) {
            return Secret::new(self.url.clone());
        }
        let Some((start, authority)) = authority(&self.url) else {
            return Secret::new(self.url.clone());
        };
        let after = &self.url[start..];
        let (user, rest) = match authority.rfind('@') {
            Some(at) => (&after[..at], &after[at + 1..]),
            None => ("", after),
        };
        Secret::new(format!(
            "{}{}:{}@{}",
            &self.url[..start],
            user,
            percent_encode(password.expose()),
            rest
        ))
    }

    /// `url` with any password in it replaced by `[redacted]`, for logs.
    pub fn redacted_url(&self) -> String {
        redact_url_password(&self.url)
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .field("password", &self.password)
            .finish()
    }
}

/// `[identity_center]`: the IAM Identity Center instance Timebox works with.
#[derive(Debug, Clone)]
pub struct IdentityCenterConfig {
    /// The instance's access-portal session length (15m..=7d). Default 8h.
    pub portal_session: PortalSession,
    /// AWS region of the instance, such as `us-east-1`.
    pub region: Option<String>,
    /// `arn:aws:sso:::instance/ssoins-…`.
    pub instance_arn: Option<String>,
    /// `d-…` (or the UUID form).
    pub identity_store_id: Option<String>,
    /// How a dashboard person is found in the identity store. Default `user_name`.
    pub user_match: crate::identity_center::UserMatch,
    /// How often the catalog (permission sets, accounts, OUs) is re-read. Default 1h.
    pub catalog_refresh: Duration,
}

impl Default for IdentityCenterConfig {
    fn default() -> Self {
        Self {
            portal_session: PortalSession::DEFAULT,
            region: None,
            instance_arn: None,
            identity_store_id: None,
            user_match: crate::identity_center::UserMatch::UserName,
            catalog_refresh: Duration::from_secs(3600),
        }
    }
}

/// `[aws]`: how the AWS SDK clients are reached. Credentials always come from the
/// SDK's default chain; the SDK's `AWS_ENDPOINT_URL*` variables work too.
#[derive(Debug, Clone)]
pub struct AwsConfig {
    /// One endpoint for every service (an emulator). Default: AWS's own.
    pub endpoint_url: Option<String>,
    pub sso_admin_endpoint_url: Option<String>,
    pub identity_store_endpoint_url: Option<String>,
    pub organizations_endpoint_url: Option<String>,
    /// Evidence: STS (assuming the read-only role), CloudTrail, Detective and IAM.
    pub sts_endpoint_url: Option<String>,
    pub cloudtrail_endpoint_url: Option<String>,
    pub detective_endpoint_url: Option<String>,
    pub iam_endpoint_url: Option<String>,
    /// Upper bound on AWS calls per second from this server; `None` = no bound.
    pub max_calls_per_second: Option<u32>,
    /// Timeout of one AWS call attempt. Default 10s.
    pub call_timeout: Duration,
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            endpoint_url: None,
            sso_admin_endpoint_url: None,
            identity_store_endpoint_url: None,
            organizations_endpoint_url: None,
            sts_endpoint_url: None,
            cloudtrail_endpoint_url: None,
            detective_endpoint_url: None,
            iam_endpoint_url: None,
            max_calls_per_second: Some(20),
            call_timeout: Duration::from_secs(10),
        }
    }
}

/// `[reaper]`: the background task that ends expired access.
#[derive(Debug, Clone)]
pub struct ReaperConfig {
    /// How often it runs, 1s..=10m. Default 15s.
    pub interval: Duration,
    /// Whether it runs at all. Default true.
    pub enabled: bool,
}

impl Default for ReaperConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(15),
            enabled: true,
        }
    }
}

/// `[log]`: what the server writes to standard output.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `text` or `json`. Default `text`.
    pub format: LogFormat,
    /// A tracing `EnvFilter` directive, such as `info` or `info,sqlx=warn`.
    /// Default `info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl LogFormat {
    /// The spelling used in the configuration: `text` or `json`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------

/// A value that must not end up in logs: `Debug` and `Display` print `[redacted]`.
/// Use [`Secret::expose`] where the value itself is needed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Resolves the secret key `section.key`, given either inline (`key = "…"`) or as
/// the path of a file holding it (`key_file = "/run/secrets/…"`).
///
/// - neither given, or given empty: `Ok(None)`;
/// - both given: an error naming both keys;
/// - a file: read whole, trailing `\n`/`\r` removed; an unreadable file is an error
///   naming the key and the path, an empty one is an error too. A relative path is
///   relative to the server's working directory.
///
/// Later sections with secrets (OIDC client secret, SMTP password, webhook keys)
/// declare `foo: Option<Value>` and `foo_file: Option<Value>` and call this.
pub fn resolve_secret(
    section: &str,
    key: &str,
    inline: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<Secret>, ConfigError> {
    let inline = inline.filter(|s| !s.is_empty());
    let file = file.filter(|p| !p.as_os_str().is_empty());
    let key_path = format!("{section}.{key}");
    let file_key = format!("{key_path}_file");
    match (inline, file) {
        (Some(_), Some(_)) => Err(ConfigError::SecretConflict {
            key: key_path,
            file_key,
        }),
        (Some(value), None) => Ok(Some(Secret(value))),
        (None, Some(path)) => {
            let text =
                std::fs::read_to_string(&path).map_err(|source| ConfigError::SecretFile {
                    key: key_path.clone(),
                    file_key: file_key.clone(),
                    path: path.clone(),
                    source,
                })?;
            let value = text.trim_end_matches(['\n', '\r']);
            if value.is_empty() {
                return Err(ConfigError::EmptySecretFile { file_key, path });
            }
            Ok(Some(Secret(value.to_owned())))
        }
        (None, None) => Ok(None),
    }
}

// ---------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------

/// Why the configuration was refused. `Display` is a complete sentence naming the
/// key and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error(
        "the configuration file {} does not exist; create it (timebox.example.toml lists \
         every key) or give the path of an existing file",
        path.display()
    )]
    FileNotFound { path: PathBuf },

    #[error(
        "the configuration file {} could not be read: {source}; make sure it is a file \
         readable by the user running Timebox",
        path.display()
    )]
    FileUnreadable { path: PathBuf, source: io::Error },

    #[error("the configuration in {origin} could not be parsed; fix the TOML syntax at the place shown:\n{message}")]
    Unparsable { origin: String, message: String },

    #[error("unknown key {key}{}; {hint}", set_in(.origin))]
    UnknownKey {
        key: String,
        hint: String,
        origin: Option<String>,
    },

    #[error(
        "{key} must be a section of settings ([{key}] in the TOML file), not {found}{}; \
         put its keys under a [{key}] header",
        set_in(.origin)
    )]
    NotASection {
        key: String,
        found: String,
        origin: Option<String>,
    },

    #[error("{key} = {value} is {problem}; {fix}{}", set_in(.origin))]
    Invalid {
        key: String,
        /// The value as written (secrets and passwords in URLs are redacted).
        value: String,
        /// What is wrong and why, such as `out of range: the reaper interval must be
        /// between 1s and 10m`.
        problem: String,
        fix: String,
        origin: Option<String>,
    },

    #[error("{key} {detail}; {fix}")]
    Inconsistent {
        key: String,
        detail: String,
        fix: String,
    },

    #[error(
        "{key} and {file_key} are both set; set only one of them: the secret itself, or \
         the path of a file holding it"
    )]
    SecretConflict { key: String, file_key: String },

    #[error(
        "{file_key} = \"{}\" could not be read: {source}; make sure the file exists and is \
         readable by the user running Timebox, or set {key} instead",
        path.display()
    )]
    SecretFile {
        key: String,
        file_key: String,
        path: PathBuf,
        source: io::Error,
    },

    #[error(
        "{file_key} = \"{}\" names an empty file; put the secret in that file, or remove \
         {file_key} if the secret is not needed",
        path.display()
    )]
    EmptySecretFile { file_key: String, path: PathBuf },

    #[error("the configuration has {} problems:{}", .0.len(), bullet_list(.0))]
    Multiple(Vec<ConfigError>),
}

fn set_in(origin: &Option<String>) -> String {
    origin
        .as_ref()
        .map(|o| format!(" (set in {o})"))
        .unwrap_or_default()
}

fn bullet_list(errors: &[ConfigError]) -> String {
    errors.iter().fold(String::new(), |mut out, e| {
        let _ = write!(out, "\n  - {e}");
        out
    })
}

impl ConfigError {
    fn from_many(mut errors: Vec<ConfigError>) -> Option<ConfigError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(ConfigError::Multiple(errors)),
        }
    }
}

// ---------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------

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
    let raw: RawConfig = figment
        .extract()
        .map_err(|e| from_figment_error(&figment, e))?;
    let mut check = Checker {
        figment: &figment,
        errors: Vec::new(),
    };
    let server = check.server(raw.server);
    let oidc = check.oidc(raw.oidc, &server.public_url);
    let session = check.session(raw.session, &server.public_url);
    let identity_center = check.identity_center(raw.identity_center);
    let evidence = check.evidence(raw.evidence, identity_center.region.as_deref());
    let config = Config {
        server,
        database: check.database(raw.database),
        identity_center,
        aws: check.aws(raw.aws),
        reaper: check.reaper(raw.reaper),
        log: check.log(raw.log),
        oidc,
        session,
        policy: check.policy(raw.policy),
        evidence,
        notify: check.notify(raw.notify),
    };
    match ConfigError::from_many(check.errors) {
        None => Ok(config),
        Some(error) => Err(error),
    }
}

/// The environment variable that sets a dotted key:
/// `identity_center.portal_session` → `TIMEBOX_IDENTITY_CENTER__PORTAL_SESSION`.
pub fn env_var_name(key: &str) -> String {
    let parts: Vec<String> = key.split('.').map(str::to_ascii_uppercase).collect();
    format!("{ENV_PREFIX}{}", parts.join(ENV_SEPARATOR))
}

/// The environment layer: every `TIMEBOX_SECTION__KEY=value` as the string `value`
/// at `section.key`. Unlike figment's `Env` provider it does not guess types from the
/// text (`0123` stays `"0123"`); each key parses its own text.
///
/// Only names with the `__` separator are overrides, and among them an unknown key is
/// an error. Other `TIMEBOX_*` names (`TIMEBOX_CONFIG`, test harness variables such as
/// `TIMEBOX_BIN`) are left alone, except a known key written with one underscore
/// (`TIMEBOX_DATABASE_URL`), which is kept so that it is refused with a hint.
#[derive(Clone, Default)]
pub struct EnvOverrides {
    /// (dotted key, value), sorted by key.
    vars: Vec<(String, String)>,
}

const ENV_SOURCE_NAME: &str = "environment variable";

impl EnvOverrides {
    /// The overrides in the process environment.
    pub fn from_process() -> Self {
        let env = Env::prefixed(ENV_PREFIX).split(ENV_SEPARATOR);
        Self::new(
            env.iter()
                .map(|(key, value)| (key.as_str().to_owned(), value))
                .filter(|(key, _)| is_override(key))
                .collect(),
        )
    }

    /// The overrides among `vars` (full names such as `TIMEBOX_DATABASE__URL`),
    /// mapped the same way as [`EnvOverrides::from_process`]. For tests.
    pub fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let vars = vars
            .into_iter()
            .filter_map(|(name, value)| {
                let name = name.as_ref().trim();
                let head = name.get(..ENV_PREFIX.len())?;
                if !head.eq_ignore_ascii_case(ENV_PREFIX) {
                    return None;
                }
                let rest = name[ENV_PREFIX.len()..].trim();
                let key = rest.replace(ENV_SEPARATOR, ".").to_ascii_lowercase();
                if key.is_empty() || key.split('.').any(str::is_empty) || !is_override(&key) {
                    return None;
                }
                Some((key, value.into()))
            })
            .collect();
        Self::new(vars)
    }

    fn new(mut vars: Vec<(String, String)>) -> Self {
        vars.sort();
        Self { vars }
    }

    /// The dotted keys set, such as `database.url`.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.vars.iter().map(|(k, _)| k.as_str())
    }
}

/// Whether the environment key (after the prefix, `__` turned into `.`) is meant as
/// an override: it has a separator, or it is `section_key` for a known key.
fn is_override(key: &str) -> bool {
    key.contains('.') || misspelt_key(key).is_some()
}

/// `database_url` → `database.url`: a known key written with one underscore.
fn misspelt_key(key: &str) -> Option<String> {
    KEYS.iter().find_map(|(section, keys)| {
        key.strip_prefix(section)
            .and_then(|rest| rest.strip_prefix('_'))
            .filter(|rest| keys.contains(rest))
            .map(|rest| format!("{section}.{rest}"))
    })
}

impl fmt::Debug for EnvOverrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets: show the keys only.
        f.debug_struct("EnvOverrides")
            .field("keys", &self.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Provider for EnvOverrides {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_SOURCE_NAME)
            .interpolater(|_: &Profile, keys: &[&str]| env_var_name(&keys.join(".")))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut root = Dict::new();
        for (key, value) in &self.vars {
            let path: Vec<&str> = key.split('.').collect();
            insert_path(&mut root, &path, Value::from(value.clone()));
        }
        let mut map = Map::new();
        map.insert(Profile::Default, root);
        Ok(map)
    }
}

fn insert_path(dict: &mut Dict, path: &[&str], value: Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert((*last).to_owned(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry((*first).to_owned())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Raw shape: structure and key names only; leaves are parsed by `Checker`.
// ---------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    server: RawServer,
    database: RawDatabase,
    identity_center: RawIdentityCenter,
    aws: RawAws,
    reaper: RawReaper,
    log: RawLog,
    oidc: auth::RawOidc,
    session: auth::RawSession,
    notify: notify::RawNotify,
    evidence: evidence::RawEvidence,
    policy: RawPolicy,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawPolicy {
    file: Option<Value>,
    poll_interval: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawServer {
    bind: Option<Value>,
    public_url: Option<Value>,
    site_root: Option<Value>,
    shutdown_grace: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawDatabase {
    url: Option<Value>,
    max_connections: Option<Value>,
    password: Option<Value>,
    password_file: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawIdentityCenter {
    portal_session: Option<Value>,
    region: Option<Value>,
    instance_arn: Option<Value>,
    identity_store_id: Option<Value>,
    user_match: Option<Value>,
    catalog_refresh: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawAws {
    endpoint_url: Option<Value>,
    sso_admin_endpoint_url: Option<Value>,
    identity_store_endpoint_url: Option<Value>,
    organizations_endpoint_url: Option<Value>,
    sts_endpoint_url: Option<Value>,
    cloudtrail_endpoint_url: Option<Value>,
    detective_endpoint_url: Option<Value>,
    iam_endpoint_url: Option<Value>,
    max_calls_per_second: Option<Value>,
    call_timeout: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawReaper {
    interval: Option<Value>,
    enabled: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawLog {
    format: Option<Value>,
    level: Option<Value>,
}

fn from_figment_error(figment: &Figment, error: figment::Error) -> ConfigError {
    let errors = error
        .into_iter()
        .map(|e| from_one_figment_error(figment, e))
        .collect();
    ConfigError::from_many(errors).unwrap_or_else(|| ConfigError::Unparsable {
        origin: "the configuration".to_owned(),
        message: "unknown error".to_owned(),
    })
}

fn from_one_figment_error(figment: &Figment, error: figment::Error) -> ConfigError {
    match &error.kind {
        Kind::UnknownField(field, expected) => {
            let mut path = error.path.clone();
            if path.last() != Some(field) {
                path.push(field.clone());
            }
            let key = path.join(".");
            let section = path[..path.len() - 1].join(".");
            ConfigError::UnknownKey {
                hint: unknown_key_hint(&section, field, expected),
                origin: origin_of(figment, &key),
                key,
            }
        }
        Kind::InvalidType(found, _) if !error.path.is_empty() => {
            let key = error.path.join(".");
            ConfigError::NotASection {
                found: describe_actual(found),
                origin: origin_of(figment, &key),
                key,
            }
        }
        kind => ConfigError::Unparsable {
            origin: error
                .metadata
                .as_ref()
                .map(|md| describe_source(md, &error.path.join(".")))
                .unwrap_or_else(|| "the configuration".to_owned()),
            message: kind.to_string(),
        },
    }
}

fn describe_actual(actual: &figment::error::Actual) -> String {
    use figment::error::Actual;
    match actual {
        Actual::Bool(b) => format!("the boolean {b}"),
        Actual::Unsigned(n) => format!("the number {n}"),
        Actual::Signed(n) => format!("the number {n}"),
        Actual::Float(n) => format!("the number {n}"),
        Actual::Char(c) => format!("the string {}", quote(&c.to_string())),
        Actual::Str(s) => format!("the string {}", quote(s)),
        Actual::Seq => "an array".to_owned(),
        other => other.to_string(),
    }
}

fn unknown_key_hint(section: &str, field: &str, expected: &[&str]) -> String {
    if section.is_empty() {
        if let Some(key) = misspelt_key(field) {
            return format!(
                "did you mean {key}? In an environment variable, separate the section \
                     from the key with two underscores: {}",
                env_var_name(&key)
            );
        }
        for (name, keys) in KEYS {
            if keys.contains(&field) {
                return format!("did you mean {name}.{field}? Put it under the [{name}] header");
            }
        }
        return match closest(field, expected) {
            Some(best) => format!("did you mean the section [{best}]?"),
            None => format!(
                "remove it or fix its spelling; the sections are {}",
                expected.join(", ")
            ),
        };
    }
    match closest(field, expected) {
        Some(best) => format!(
            "did you mean {section}.{best}? The keys of [{section}] are {}",
            expected.join(", ")
        ),
        None => format!(
            "remove it or fix its spelling; the keys of [{section}] are {}",
            expected.join(", ")
        ),
    }
}

/// The candidate nearest to `word` by edit distance, if it is near enough.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= 2 || *d * 3 <= word.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb {
                previous
            } else {
                1 + previous.min(row[j]).min(current)
            };
            previous = current;
        }
    }
    row[b.len()]
}

/// Where the value at `key` came from, such as `file /etc/timebox.toml` or
/// `environment variable TIMEBOX_DATABASE__URL`.
fn origin_of(figment: &Figment, key: &str) -> Option<String> {
    let value = figment.find_value(key).ok()?;
    let metadata = figment.get_metadata(value.tag())?;
    Some(describe_source(metadata, key))
}

fn describe_source(metadata: &Metadata, key: &str) -> String {
    match &metadata.source {
        Some(Source::File(path)) => format!("file {}", path.display()),
        _ if metadata.name == ENV_SOURCE_NAME && !key.is_empty() => {
            let keys: Vec<&str> = key.split('.').collect();
            format!(
                "{ENV_SOURCE_NAME} {}",
                metadata.interpolate(&Profile::Default, &keys)
            )
        }
        _ => metadata.name.to_string(),
    }
}

// ---------------------------------------------------------------------------------
// Validation of each key
// ---------------------------------------------------------------------------------

struct Checker<'f> {
    figment: &'f Figment,
    errors: Vec<ConfigError>,
}

/// What is wrong with one value; `Checker` adds the key, the value and the origin.
struct Problem {
    problem: String,
    detail: String,
    fix: String,
}

impl Problem {
    fn new(problem: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            problem: problem.into(),
            detail: detail.into(),
            fix: fix.into(),
        }
    }
}

impl Checker<'_> {
    fn invalid(&mut self, key: &str, value: String, problem: Problem) {
        self.errors.push(ConfigError::Invalid {
            key: key.to_owned(),
            value,
            problem: format!("{}: {}", problem.problem, problem.detail),
            fix: problem.fix,
            origin: origin_of(self.figment, key),
        });
    }

    /// `parse(raw)`, or `default` when the key is not set. On error, records it and
    /// returns `default` so that later keys are still checked.
    fn value<T>(
        &mut self,
        key: &str,
        raw: Option<Value>,
        default: T,
        parse: impl FnOnce(&Value) -> Result<T, Problem>,
    ) -> T {
        let Some(raw) = raw else { return default };
        match parse(&raw) {
            Ok(value) => value,
            Err(problem) => {
                self.invalid(key, render(&raw), problem);
                default
            }
        }
    }

    /// An optional string key; empty means unset.
    fn optional(
        &mut self,
        key: &str,
        raw: Option<Value>,
        example: &str,
        check: impl FnOnce(&str) -> Result<(), Problem>,
    ) -> Option<String> {
        self.value(key, raw, None, |v| {
            let s = expect_str(v, example)?.trim();
            if s.is_empty() {
                return Ok(None);
            }
            check(s)?;
            Ok(Some(s.to_owned()))
        })
    }

    /// The text of a secret key. Its value never appears in messages.
    fn secret_text(&mut self, key: &str, raw: Option<Value>) -> Option<String> {
        match raw? {
            Value::String(_, s) => Some(s),
            other => {
                let problem = Problem::new(
                    "not a string",
                    format!("found {}", kind_of(&other)),
                    "write the secret as a quoted string",
                );
                self.invalid(key, "[redacted]".to_owned(), problem);
                None
            }
        }
    }

    fn path(&mut self, key: &str, raw: Option<Value>) -> Option<PathBuf> {
        self.value(key, raw, None, |v| {
            expect_str(v, "\"/run/secrets/timebox-db-password\"").map(|s| Some(PathBuf::from(s)))
        })
    }

    fn server(&mut self, raw: RawServer) -> ServerConfig {
        let d = ServerConfig::default();
        ServerConfig {
            bind: self.value("server.bind", raw.bind, d.bind, parse_bind),
            public_url: self.value(
                "server.public_url",
                raw.public_url,
                d.public_url,
                parse_public_url,
            ),
            site_root: self.value("server.site_root", raw.site_root, d.site_root, |v| {
                let s = expect_str(v, "\"/usr/share/timebox/site\"")?.trim();
                if s.is_empty() {
                    Err(Problem::new(
                        "empty",
                        "it names the directory holding the built site (pkg/ and assets)",
                        "set it to the site directory of `cargo leptos build`, such as \
                         \"target/site\", or remove the key for that default",
                    ))
                } else {
                    Ok(s.to_owned())
                }
            }),
            shutdown_grace: self.value(
                "server.shutdown_grace",
                raw.shutdown_grace,
                d.shutdown_grace,
                |v| {
                    duration_in(
                        v,
                        "\"10s\"",
                        (Duration::ZERO, MAX_SHUTDOWN_GRACE),
                        "the shutdown grace period",
                        "pick how long in-flight requests may take to finish after a shutdown \
                     signal, such as \"10s\"",
                    )
                },
            ),
        }
    }

    fn database(&mut self, raw: RawDatabase) -> DatabaseConfig {
        let d = DatabaseConfig::default();
        let url = self.value("database.url", raw.url, d.url, parse_database_url);
        let max_connections = self.value(
            "database.max_connections",
            raw.max_connections,
            d.max_connections,
            parse_max_connections,
        );
        let inline = self.secret_text("database.password", raw.password);
        let file = self.path("database.password_file", raw.password_file);
        let from_file = file.as_ref().is_some_and(|p| !p.as_os_str().is_empty());
        let password = match resolve_secret("database", "password", inline, file) {
            Ok(password) => password,
            Err(e) => {
                self.errors.push(e);
                None
            }
        };
        let key = if from_file {
            "database.password_file"
        } else {
            "database.password"
        };
        let config = DatabaseConfig {
            url,
            max_connections,
            password,
        };
        if config.password.is_some() {
            if config.is_sqlite() {
                self.errors.push(ConfigError::Inconsistent {
                    key: key.to_owned(),
                    detail: format!(
                        "is set, but database.url ({}) is a SQLite database, which has no password",
                        config.redacted_url()
                    ),
                    fix: format!(
                        "remove {key}, or point database.url at PostgreSQL (postgres://…)"
                    ),
                });
            } else if url_has_password(&config.url) {
                self.errors.push(ConfigError::Inconsistent {
                    key: key.to_owned(),
                    detail: "is set, but database.url already contains a password".to_owned(),
                    fix: format!(
                        "keep the password in one place: take it out of database.url \
                         (recommended, so the URL can be logged) or remove {key}"
                    ),
                });
            }
        }
        config
    }

    fn identity_center(&mut self, raw: RawIdentityCenter) -> IdentityCenterConfig {
        let d = IdentityCenterConfig::default();
        IdentityCenterConfig {
            portal_session: self.value(
                "identity_center.portal_session",
                raw.portal_session,
                d.portal_session,
                parse_portal_session,
            ),
            region: self.optional("identity_center.region", raw.region, "\"us-east-1\"", |s| {
                if is_region(s) {
                    Ok(())
                } else {
                    Err(Problem::new(
                        "not an AWS region",
                        "a region code is lowercase words and a number joined by dashes",
                        "use the region of your Identity Center instance, such as \"us-east-1\" \
                         or \"eu-west-1\"",
                    ))
                }
            }),
            instance_arn: self.optional(
                "identity_center.instance_arn",
                raw.instance_arn,
                "\"arn:aws:sso:::instance/ssoins-0123456789abcdef\"",
                |s| {
                    if is_instance_arn(s) {
                        Ok(())
                    } else {
                        Err(Problem::new(
                            "not an Identity Center instance ARN",
                            "it looks like arn:aws:sso:::instance/ssoins-0123456789abcdef",
                            "copy the instance ARN from the IAM Identity Center console \
                             (Settings → Details), or from `aws sso-admin list-instances`",
                        ))
                    }
                },
            ),
            identity_store_id: self.optional(
                "identity_center.identity_store_id",
                raw.identity_store_id,
                "\"d-0123456789\"",
                |s| {
                    if is_identity_store_id(s) {
                        Ok(())
                    } else {
                        Err(Problem::new(
                            "not an identity store ID",
                            "it looks like d-0123456789 (d- and ten hexadecimal digits)",
                            "copy the identity store ID from the IAM Identity Center console \
                             (Settings → Identity source), or from `aws sso-admin list-instances`",
                        ))
                    }
                },
            ),
            user_match: self.value(
                "identity_center.user_match",
                raw.user_match,
                d.user_match,
                |v| {
                    let s = expect_str(v, "\"user_name\"")?.trim();
                    match s {
                        "user_name" => Ok(crate::identity_center::UserMatch::UserName),
                        "email" => Ok(crate::identity_center::UserMatch::Email),
                        _ => Err(Problem::new(
                            "not a way to match users",
                            "a dashboard person is found in the identity store by userName or \
                             by email",
                            "use \"user_name\" or \"email\"",
                        )),
                    }
                },
            ),
            catalog_refresh: self.value(
                "identity_center.catalog_refresh",
                raw.catalog_refresh,
                d.catalog_refresh,
                |v| {
                    duration_in(
                        v,
                        "\"1h\"",
                        (Duration::from_secs(60), Duration::from_secs(86_400)),
                        "the catalog refresh interval",
                        "pick how often permission sets and accounts are re-read, such as \"1h\"",
                    )
                },
            ),
        }
    }

    fn aws(&mut self, raw: RawAws) -> AwsConfig {
        let d = AwsConfig::default();
        let mut endpoint = |key: &str, raw: Option<Value>| {
            self.optional(key, raw, "\"http://127.0.0.1:5000\"", |s| {
                if s.starts_with("http://") || s.starts_with("https://") {
                    Ok(())
                } else {
                    Err(Problem::new(
                        "not an http(s) URL",
                        "an endpoint override is the URL of an AWS API or an emulator",
                        "write it as \"https://sso.us-east-1.amazonaws.com\" or \
                         \"http://127.0.0.1:5000\", or remove the key to use AWS's own endpoint",
                    ))
                }
            })
        };
        let endpoint_url = endpoint("aws.endpoint_url", raw.endpoint_url);
        let sso_admin_endpoint_url =
            endpoint("aws.sso_admin_endpoint_url", raw.sso_admin_endpoint_url);
        let identity_store_endpoint_url = endpoint(
            "aws.identity_store_endpoint_url",
            raw.identity_store_endpoint_url,
        );
        let organizations_endpoint_url = endpoint(
            "aws.organizations_endpoint_url",
            raw.organizations_endpoint_url,
        );
        let sts_endpoint_url = endpoint("aws.sts_endpoint_url", raw.sts_endpoint_url);
        let cloudtrail_endpoint_url =
            endpoint("aws.cloudtrail_endpoint_url", raw.cloudtrail_endpoint_url);
        let detective_endpoint_url =
            endpoint("aws.detective_endpoint_url", raw.detective_endpoint_url);
        let iam_endpoint_url = endpoint("aws.iam_endpoint_url", raw.iam_endpoint_url);
        AwsConfig {
            endpoint_url,
            sso_admin_endpoint_url,
            identity_store_endpoint_url,
            organizations_endpoint_url,
            sts_endpoint_url,
            cloudtrail_endpoint_url,
            detective_endpoint_url,
            iam_endpoint_url,
            max_calls_per_second: self.value(
                "aws.max_calls_per_second",
                raw.max_calls_per_second,
                d.max_calls_per_second,
                |v| {
                    let problem = || {
                        Problem::new(
                            "not a whole number from 0 to 10000",
                            "it bounds this server's AWS call rate",
                            "write a number such as 20 (0 for no bound)",
                        )
                    };
                    let n = match v {
                        Value::Num(_, n) => n.to_i128().ok_or_else(problem)?,
                        Value::String(_, s) => s.trim().parse::<i128>().map_err(|_| problem())?,
                        _ => return Err(problem()),
                    };
                    match u32::try_from(n) {
                        Ok(0) => Ok(None),
                        Ok(n) if n <= 10_000 => Ok(Some(n)),
                        _ => Err(problem()),
                    }
                },
            ),
            call_timeout: self.value("aws.call_timeout", raw.call_timeout, d.call_timeout, |v| {
                duration_in(
                    v,
                    "\"10s\"",
                    (Duration::from_secs(1), Duration::from_secs(120)),
                    "the AWS call timeout",
                    "pick how long one AWS call may take, such as \"10s\"",
                )
            }),
        }
    }

    fn reaper(&mut self, raw: RawReaper) -> ReaperConfig {
        let d = ReaperConfig::default();
        ReaperConfig {
            interval: self.value("reaper.interval", raw.interval, d.interval, |v| {
                duration_in(
                    v,
                    "\"15s\"",
                    (MIN_REAPER_INTERVAL, MAX_REAPER_INTERVAL),
                    "the reaper interval",
                    "pick how often expired access is looked for, such as \"15s\"; access ends \
                     at most this long after its deadline",
                )
            }),
            enabled: self.value("reaper.enabled", raw.enabled, d.enabled, parse_bool),
        }
    }

    fn policy(&mut self, raw: RawPolicy) -> PolicyConfig {
        let d = PolicyConfig::default();
        PolicyConfig {
            file: self
                .optional(
                    "policy.file",
                    raw.file,
                    "\"/etc/timebox/policy.toml\"",
                    |_| Ok(()),
                )
                .map(PathBuf::from),
            poll_interval: self.value(
                "policy.poll_interval",
                raw.poll_interval,
                d.poll_interval,
                |v| {
                    duration_in(
                        v,
                        "\"5s\"",
                        (Duration::from_secs(1), Duration::from_secs(600)),
                        "the policy file poll interval",
                        "pick how often the policy file is checked for changes, such as \"5s\" \
                         (SIGHUP reloads it at once)",
                    )
                },
            ),
        }
    }

    fn log(&mut self, raw: RawLog) -> LogConfig {
        let d = LogConfig::default();
        LogConfig {
            format: self.value("log.format", raw.format, d.format, parse_log_format),
            level: self.value("log.level", raw.level, d.level, |v| {
                let s = expect_str(v, "\"info\"")?.trim();
                if s.is_empty() {
                    Err(Problem::new(
                        "empty",
                        "it says which log lines are written",
                        "use a tracing filter such as \"info\", \"debug\" or \
                         \"info,sqlx=warn\", or remove the key for the default \"info\"",
                    ))
                } else {
                    Ok(s.to_owned())
                }
            }),
        }
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::String(..) => "a string",
        Value::Char(..) => "a character",
        Value::Bool(..) => "a boolean",
        Value::Num(..) => "a number",
        Value::Empty(..) => "an empty value",
        Value::Dict(..) => "a table",
        Value::Array(..) => "an array",
    }
}

/// A value as it would be written in TOML, for messages.
fn render(value: &Value) -> String {
    match value {
        Value::String(_, s) => quote(&redact_url_password(s)),
        Value::Char(_, c) => quote(&c.to_string()),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => render_num(*n),
        Value::Empty(..) => "(empty)".to_owned(),
        Value::Dict(..) => "{ … }".to_owned(),
        Value::Array(..) => "[ … ]".to_owned(),
    }
}

fn render_num(n: Num) -> String {
    n.to_u128()
        .map(|v| v.to_string())
        .or_else(|| n.to_i128().map(|v| v.to_string()))
        .or_else(|| n.to_f64().map(|v| v.to_string()))
        .unwrap_or_else(|| "a number".to_owned())
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn expect_str<'v>(value: &'v Value, example: &str) -> Result<&'v str, Problem> {
    match value {
        Value::String(_, s) => Ok(s),
        other => Err(not_a_string(other, example)),
    }
}

fn not_a_string(value: &Value, example: &str) -> Problem {
    Problem::new(
        "not a string",
        format!("found {}", kind_of(value)),
        format!("write it as a quoted string such as {example}"),
    )
}

fn parse_duration(value: &Value, example: &str) -> Result<Duration, Problem> {
    let text = match value {
        Value::String(_, s) => s.trim(),
        Value::Num(..) => {
            return Err(Problem::new(
                "missing a unit",
                "a bare number could mean seconds, minutes or hours",
                format!("write it as a quoted duration with a unit, such as {example}"),
            ))
        }
        other => return Err(not_a_string(other, example)),
    };
    humantime::parse_duration(text).map_err(|e| {
        Problem::new(
            "not a valid duration",
            e.to_string(),
            format!(
                "write a number followed by a unit (s, m, h, d), such as {example} or \"1h 30m\""
            ),
        )
    })
}

fn duration_in(
    value: &Value,
    example: &str,
    (min, max): (Duration, Duration),
    what: &str,
    fix: &str,
) -> Result<Duration, Problem> {
    let d = parse_duration(value, example)?;
    if d < min || d > max {
        return Err(Problem::new(
            "out of range",
            format!("{what} must be between {} and {}", human(min), human(max)),
            fix,
        ));
    }
    Ok(d)
}

fn parse_portal_session(value: &Value) -> Result<PortalSession, Problem> {
    let d = parse_duration(value, "\"8h\"")?;
    i64::try_from(d.as_secs())
        .ok()
        .and_then(|s| PortalSession::from_seconds(s).ok())
        .ok_or_else(|| {
            Problem::new(
                "out of range",
                format!(
                    "the access-portal session must be between {} and {}",
                    human(secs(PortalSession::MIN_SECONDS)),
                    human(secs(PortalSession::MAX_SECONDS))
                ),
                PORTAL_SESSION_FIX,
            )
        })
}

fn secs(s: i64) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap_or_default())
}

/// `15m`, `7d`, `1h 30m`, `0s`.
fn human(d: Duration) -> String {
    let t = d.as_secs();
    let parts: Vec<String> = [
        (t / 86_400, "d"),
        ((t % 86_400) / 3600, "h"),
        ((t % 3600) / 60, "m"),
        (t % 60, "s"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, unit)| format!("{n}{unit}"))
    .collect();
    if parts.is_empty() {
        "0s".to_owned()
    } else {
        parts.join(" ")
    }
}

fn parse_bind(value: &Value) -> Result<SocketAddr, Problem> {
    let s = expect_str(value, "\"127.0.0.1:3000\"")?.trim();
    s.parse().map_err(|_| {
        Problem::new(
            "not an address and port",
            "it must be an IP address and a port (host names are not looked up)",
            "use \"127.0.0.1:3000\" (this machine only), \"0.0.0.0:3000\" (all IPv4 \
             interfaces) or \"[::]:3000\" (all interfaces)",
        )
    })
}

fn parse_public_url(value: &Value) -> Result<String, Problem> {
    const FIX: &str = "set it to the address people use to reach Timebox in their browser, \
                       such as \"https://timebox.example.com\"";
    let s = expect_str(value, "\"https://timebox.example.com\"")?.trim();
    let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return Err(Problem::new(
            "not an http(s) URL",
            "it must start with http:// or https://",
            FIX,
        ));
    };
    if rest.split(['/', '?', '#']).next().unwrap_or("").is_empty() {
        return Err(Problem::new(
            "missing a host",
            "nothing follows the scheme",
            FIX,
        ));
    }
    if s.chars().any(char::is_whitespace) || s.contains(['?', '#']) {
        return Err(Problem::new(
            "not a plain base URL",
            "it must not contain spaces, a query (?…) or a fragment (#…)",
            FIX,
        ));
    }
    Ok(s.trim_end_matches('/').to_owned())
}

fn parse_database_url(value: &Value) -> Result<String, Problem> {
    const FIX: &str = "use \"sqlite://timebox.db\" for a SQLite file, or \
                       \"postgres://timebox@db.example.com:5432/timebox\" for PostgreSQL";
    let s = expect_str(value, "\"sqlite://timebox.db\"")?.trim();
    let body = s.strip_prefix("sqlite:").or_else(|| {
        s.strip_prefix("postgres://")
            .or_else(|| s.strip_prefix("postgresql://"))
    });
    let Some(body) = body else {
        return Err(Problem::new(
            "not a supported database URL",
            "Timebox stores its data in SQLite (sqlite:…) or PostgreSQL (postgres://… or \
             postgresql://…)",
            FIX,
        ));
    };
    if body.trim_start_matches('/').is_empty() {
        return Err(Problem::new(
            "incomplete",
            "nothing follows the scheme",
            FIX,
        ));
    }
    Ok(s.to_owned())
}

fn parse_max_connections(value: &Value) -> Result<u32, Problem> {
    let out_of_range = || {
        Problem::new(
            "out of range",
            format!("the pool size must be a whole number between 1 and {MAX_DB_CONNECTIONS}"),
            "use a small number such as 10; with PostgreSQL, keep the total over all Timebox \
             servers below the database's own max_connections",
        )
    };
    let n: i128 = match value {
        Value::Num(_, n) => match n.to_u128() {
            Some(n) => i128::try_from(n).unwrap_or(i128::MAX),
            None => n.to_i128().ok_or_else(out_of_range)?,
        },
        Value::String(_, s) => s.trim().parse().map_err(|_| {
            Problem::new(
                "not a number",
                "the pool size is a whole number",
                "use a small number such as 10",
            )
        })?,
        other => {
            return Err(Problem::new(
                "not a number",
                format!("found {}", kind_of(other)),
                "use a small number such as 10",
            ))
        }
    };
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_DB_CONNECTIONS).contains(n))
        .ok_or_else(out_of_range)
}

fn parse_bool(value: &Value) -> Result<bool, Problem> {
    let problem = || Problem::new("not true or false", "it is a switch", "use true or false");
    match value {
        Value::Bool(_, b) => Ok(*b),
        Value::String(_, s) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
        Value::String(_, s) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(problem()),
    }
}

fn parse_log_format(value: &Value) -> Result<LogFormat, Problem> {
    let s = expect_str(value, "\"text\"")?.trim();
    if s.eq_ignore_ascii_case("text") {
        Ok(LogFormat::Text)
    } else if s.eq_ignore_ascii_case("json") {
        Ok(LogFormat::Json)
    } else {
        Err(Problem::new(
            "not a log format",
            "the formats are text and json",
            "use \"text\" for human-readable lines or \"json\" for one JSON object per line",
        ))
    }
}

fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_instance_arn(s: &str) -> bool {
    let Some((partition, rest)) = s.strip_prefix("arn:").and_then(|r| r.split_once(':')) else {
        return false;
    };
    if partition.is_empty()
        || !partition
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-')
    {
        return false;
    }
    let Some(id) = rest.strip_prefix("sso:::instance/") else {
        return false;
    };
    id.strip_prefix("ssoins-")
        .or_else(|| id.strip_prefix("ins-"))
        .is_some_and(|suffix| {
            !suffix.is_empty()
                && suffix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        })
}

fn is_identity_store_id(s: &str) -> bool {
    let hex = |part: &str, len: usize| {
        part.len() == len
            && part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if let Some(rest) = s.strip_prefix("d-") {
        return hex(rest, 10);
    }
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(len, p)| hex(p, *len))
}

/// `(index where the authority starts, authority)` of a `scheme://authority/…` URL.
fn authority(url: &str) -> Option<(usize, &str)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some((start, &rest[..end]))
}

fn url_has_password(url: &str) -> bool {
    authority(url)
        .and_then(|(_, a)| a.rfind('@').map(|at| &a[..at]))
        .is_some_and(|userinfo| userinfo.contains(':'))
}

fn redact_url_password(url: &str) -> String {
    let Some((start, authority)) = authority(url) else {
        return url.to_owned();
    };
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let Some(colon) = authority[..at].find(':') else {
        return url.to_owned();
    };
    format!(
        "{}[redacted]{}",
        &url[..start + colon + 1],
        &url[start + at..]
    )
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Held by tests that read or change the process environment (`load`).
    static PROCESS_ENV: Mutex<()> = Mutex::new(());

    fn from_toml(toml: &str) -> Result<Config, ConfigError> {
        load_from(Figment::from(Toml::string(toml)))
    }

    fn with_env(toml: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        load_from(
            Figment::from(Toml::string(toml)).merge(EnvOverrides::from_vars(vars.iter().copied())),
        )
    }

    fn message(result: Result<Config, ConfigError>) -> String {
        match result {
            Ok(config) => panic!("expected the configuration to be refused, got {config:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[track_caller]
    fn assert_contains(message: &str, needle: &str) {
        assert!(
            message.contains(needle),
            "message\n  {message}\ndoes not contain\n  {needle}"
        );
    }

    fn write_file(dir: &tempfile::TempDir, name: &str, contents: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path
    }

    #[test]
    fn defaults_load_with_no_sources() {
        let c = load_from(Figment::new()).expect("defaults are valid");
        assert_eq!(c.server.bind, SocketAddr::from(([127, 0, 0, 1], 3000)));
        assert_eq!(c.server.public_url, "http://127.0.0.1:3000");
        assert_eq!(c.server.site_root, "target/site");
        assert_eq!(c.server.shutdown_grace, Duration::from_secs(10));
        assert_eq!(c.database.url, "sqlite://timebox.db");
        assert_eq!(c.database.max_connections, 10);
        assert!(c.database.password.is_none());
        assert_eq!(c.identity_center.portal_session, PortalSession::DEFAULT);
        assert_eq!(c.identity_center.portal_session.seconds(), 8 * 3600);
        assert_eq!(c.identity_center.region, None);
        assert_eq!(c.identity_center.instance_arn, None);
        assert_eq!(c.identity_center.identity_store_id, None);
        assert_eq!(c.reaper.interval, Duration::from_secs(15));
        assert!(c.reaper.enabled);
        assert_eq!(c.log.format, LogFormat::Text);
        assert_eq!(c.log.level, "info");

        // Config::default() is the same thing.
        let d = Config::default();
        assert_eq!(format!("{c:?}"), format!("{d:?}"));
    }

    #[test]
    fn load_reads_a_file_and_refuses_a_missing_one() {
        let _env = PROCESS_ENV.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write_file(&dir, "timebox.toml", "[reaper]\ninterval = \"30s\"\n");
        let c = load(Some(&path)).expect("file loads");
        assert_eq!(c.reaper.interval, Duration::from_secs(30));

        let missing = dir.path().join("nope.toml");
        let e = load(Some(&missing)).expect_err("missing file refused");
        assert!(matches!(e, ConfigError::FileNotFound { .. }));
        assert_contains(&e.to_string(), &missing.display().to_string());
        assert_contains(&e.to_string(), "does not exist");

        let e = load(Some(dir.path())).expect_err("a directory is refused");
        assert_contains(&e.to_string(), "could not be read");
    }

    #[test]
    fn file_values_override_defaults() {
        let c = from_toml(
            r#"
            [server]
            bind = "0.0.0.0:8080"
            public_url = "https://timebox.example.com/"
            site_root = "/usr/share/timebox/site"
            shutdown_grace = "30s"

            [database]
            url = "postgres://timebox@db.internal:5432/timebox"
            max_connections = 25

            [identity_center]
            portal_session = "12h"
            region = "eu-west-1"
            instance_arn = "arn:aws:sso:::instance/ssoins-0123456789abcdef"
            identity_store_id = "d-0123456789"

            [reaper]
            interval = "1m"
            enabled = false

            [log]
            format = "json"
            level = "info,sqlx=warn"
            "#,
        )
        .expect("valid file");
        assert_eq!(c.server.bind, SocketAddr::from(([0, 0, 0, 0], 8080)));
        assert_eq!(c.server.public_url, "https://timebox.example.com");
        assert_eq!(c.server.site_root, "/usr/share/timebox/site");
        assert_eq!(c.server.shutdown_grace, Duration::from_secs(30));
        assert_eq!(
            c.database.url,
            "postgres://timebox@db.internal:5432/timebox"
        );
        assert_eq!(c.database.max_connections, 25);
        assert_eq!(c.identity_center.portal_session.seconds(), 12 * 3600);
        assert_eq!(c.identity_center.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            c.identity_center.instance_arn.as_deref(),
            Some("arn:aws:sso:::instance/ssoins-0123456789abcdef")
        );
        assert_eq!(
            c.identity_center.identity_store_id.as_deref(),
            Some("d-0123456789")
        );
        assert_eq!(c.reaper.interval, Duration::from_secs(60));
        assert!(!c.reaper.enabled);
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.log.level, "info,sqlx=warn");
    }

    #[test]
    fn env_overrides_file() {
        let c = with_env(
            "[identity_center]\nportal_session = \"8h\"\n[reaper]\nenabled = true\n[database]\nmax_connections = 5\n",
            &[
                ("TIMEBOX_IDENTITY_CENTER__PORTAL_SESSION", "12h"),
                ("TIMEBOX_REAPER__ENABLED", "false"),
                ("TIMEBOX_DATABASE__MAX_CONNECTIONS", "25"),
                ("TIMEBOX_DATABASE__URL", "postgresql://app@db/timebox"),
                ("TIMEBOX_DATABASE__PASSWORD", "0123"),
                ("TIMEBOX_SERVER__SITE_ROOT", "/srv/site"),
                // Not overrides: no `__`, and not a known key with one underscore.
                ("TIMEBOX_CONFIG", "/ignored.toml"),
                ("TIMEBOX_BIN", "/usr/bin/timebox"),
                ("TIMEBOX_SITE_ROOT", "/ignored"),
                ("TIMEBOX_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1/postgres"),
                ("OTHER_VAR", "ignored"),
            ],
        )
        .expect("valid");
        assert_eq!(c.identity_center.portal_session.seconds(), 12 * 3600);
        assert!(!c.reaper.enabled);
        assert_eq!(c.database.max_connections, 25);
        assert_eq!(c.database.url, "postgresql://app@db/timebox");
        assert_eq!(c.server.site_root, "/srv/site");
        // Text from the environment is not reinterpreted as a number.
        assert_eq!(
            c.database.password.as_ref().map(Secret::expose),
            Some("0123")
        );
    }

    #[test]
    fn aws_and_identity_mapping_keys() {
        let c = from_toml(
            r#"
            [identity_center]
            user_match = "email"
            catalog_refresh = "15m"
            [aws]
            endpoint_url = "http://127.0.0.1:5000"
            organizations_endpoint_url = "https://organizations.us-east-1.amazonaws.com"
            max_calls_per_second = 0
            call_timeout = "3s"
            "#,
        )
        .unwrap();
        assert_eq!(
            c.identity_center.user_match,
            crate::identity_center::UserMatch::Email
        );
        assert_eq!(c.identity_center.catalog_refresh, Duration::from_secs(900));
        assert_eq!(c.aws.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(c.aws.sso_admin_endpoint_url, None);
        assert_eq!(c.aws.max_calls_per_second, None, "0 means no bound");
        assert_eq!(c.aws.call_timeout, Duration::from_secs(3));
        let d = Config::default();
        assert_eq!(d.aws.max_calls_per_second, Some(20));
        assert_eq!(
            d.identity_center.user_match,
            crate::identity_center::UserMatch::UserName
        );

        let m = message(from_toml(
            "[identity_center]\nuser_match = \"login\"\n[aws]\nendpoint_url = \"localhost:5000\"\nmax_calls_per_second = -1\n",
        ));
        assert_contains(
            &m,
            "identity_center.user_match = \"login\" is not a way to match users",
        );
        assert_contains(&m, "use \"user_name\" or \"email\"");
        assert_contains(
            &m,
            "aws.endpoint_url = \"localhost:5000\" is not an http(s) URL",
        );
        assert_contains(
            &m,
            "aws.max_calls_per_second = -1 is not a whole number from 0 to 10000",
        );
        let m = message(with_env("", &[("TIMEBOX_AWS__CALL_TIMEOUT", "10m")]));
        assert_contains(&m, "aws.call_timeout = \"10m\" is out of range");
    }

    #[test]
    fn env_errors_name_the_variable() {
        let m = message(with_env(
            "",
            &[("TIMEBOX_IDENTITY_CENTER__PORTAL_SESSION", "10m")],
        ));
        assert_contains(
            &m,
            "identity_center.portal_session = \"10m\" is out of range",
        );
        assert_contains(
            &m,
            "(set in environment variable TIMEBOX_IDENTITY_CENTER__PORTAL_SESSION)",
        );

        let m = message(with_env("", &[("TIMEBOX_DATABASE_URL", "sqlite://x.db")]));
        assert_contains(&m, "unknown key database_url");
        assert_contains(&m, "did you mean database.url?");
        assert_contains(&m, "TIMEBOX_DATABASE__URL");
        assert_contains(&m, "(set in environment variable TIMEBOX_DATABASE_URL)");

        let m = message(with_env("", &[("TIMEBOX_DATABSE__URL", "sqlite://x.db")]));
        assert_contains(
            &m,
            "unknown key databse (set in environment variable TIMEBOX_DATABSE)",
        );
        assert_contains(&m, "did you mean the section [database]?");

        let m = message(with_env("", &[("TIMEBOX_LOG__LEVLE", "debug")]));
        assert_contains(
            &m,
            "unknown key log.levle (set in environment variable TIMEBOX_LOG__LEVLE)",
        );
        assert_contains(&m, "did you mean log.level?");
    }

    #[test]
    fn process_environment_is_read() {
        let _env = PROCESS_ENV.lock().unwrap_or_else(|e| e.into_inner());
        // Setting variables is only safe while no other thread reads the
        // environment; the tests that do hold PROCESS_ENV.
        std::env::set_var("TIMEBOX_LOG__LEVEL", "debug");
        std::env::set_var("TIMEBOX_REAPER__INTERVAL", "45s");
        std::env::set_var("TIMEBOX_UNRELATED_TEST_VARIABLE", "ignored");
        let from_process = EnvOverrides::from_process();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write_file(
            &dir,
            "t.toml",
            "[log]\nlevel = \"warn\"\nformat = \"json\"\n",
        );
        let loaded = load(Some(&path));
        std::env::remove_var("TIMEBOX_LOG__LEVEL");
        std::env::remove_var("TIMEBOX_REAPER__INTERVAL");
        std::env::remove_var("TIMEBOX_UNRELATED_TEST_VARIABLE");

        let keys: Vec<&str> = from_process.keys().collect();
        assert!(keys.contains(&"log.level"), "{keys:?}");
        assert!(keys.contains(&"reaper.interval"), "{keys:?}");
        assert!(!keys.iter().any(|k| k.contains("unrelated")), "{keys:?}");
        let by_hand = EnvOverrides::from_vars([
            ("TIMEBOX_LOG__LEVEL", "debug"),
            ("TIMEBOX_REAPER__INTERVAL", "45s"),
        ]);
        assert_eq!(
            by_hand.vars,
            vec![
                ("log.level".to_owned(), "debug".to_owned()),
                ("reaper.interval".to_owned(), "45s".to_owned()),
            ]
        );

        let c = loaded.expect("valid");
        assert_eq!(c.log.level, "debug");
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.reaper.interval, Duration::from_secs(45));
    }

    #[test]
    fn portal_session_out_of_range_is_refused() {
        let m = message(from_toml("[identity_center]\nportal_session = \"10m\"\n"));
        assert_contains(
            &m,
            "identity_center.portal_session = \"10m\" is out of range: the access-portal \
             session must be between 15m and 7d; set it to your Identity Center instance's \
             session duration (Settings → Authentication → Session duration)",
        );
        let m = message(from_toml("[identity_center]\nportal_session = \"8d\"\n"));
        assert_contains(
            &m,
            "identity_center.portal_session = \"8d\" is out of range",
        );
        assert_contains(&m, "between 15m and 7d");

        // The bounds themselves are accepted.
        for ok in ["15m", "7d", "1h 30m"] {
            from_toml(&format!("[identity_center]\nportal_session = \"{ok}\"\n"))
                .unwrap_or_else(|e| panic!("{ok} refused: {e}"));
        }
    }

    #[test]
    fn malformed_duration_is_refused_with_key() {
        let m = message(from_toml(
            "[identity_center]\nportal_session = \"eight hours\"\n",
        ));
        assert_contains(
            &m,
            "identity_center.portal_session = \"eight hours\" is not a valid duration",
        );
        assert_contains(&m, "such as \"8h\"");

        let m = message(from_toml("[reaper]\ninterval = 30\n"));
        assert_contains(&m, "reaper.interval = 30 is missing a unit");
        assert_contains(&m, "such as \"15s\"");

        let m = message(from_toml("[server]\nshutdown_grace = \"soon\"\n"));
        assert_contains(
            &m,
            "server.shutdown_grace = \"soon\" is not a valid duration",
        );

        let m = message(from_toml("[reaper]\ninterval = \"500ms\"\n"));
        assert_contains(&m, "reaper.interval = \"500ms\" is out of range: the reaper interval must be between 1s and 10m");
        let m = message(from_toml("[reaper]\ninterval = \"11m\"\n"));
        assert_contains(&m, "reaper.interval = \"11m\" is out of range");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let m = message(from_toml("[identity_center]\nportal_sesion = \"8h\"\n"));
        assert_contains(&m, "unknown key identity_center.portal_sesion");
        assert_contains(&m, "did you mean identity_center.portal_session?");
        assert_contains(&m, "(set in TOML source string)");

        let m = message(from_toml("[reaper]\nfrobnicate = true\n"));
        assert_contains(&m, "unknown key reaper.frobnicate");
        assert_contains(&m, "the keys of [reaper] are interval, enabled");

        // A key outside its section.
        let m = message(from_toml("bind = \"0.0.0.0:3000\"\n"));
        assert_contains(&m, "unknown key bind");
        assert_contains(
            &m,
            "did you mean server.bind? Put it under the [server] header",
        );

        // A misspelt section.
        let m = message(from_toml("[databse]\nurl = \"sqlite://x.db\"\n"));
        assert_contains(&m, "unknown key databse");
        assert_contains(&m, "did you mean the section [database]?");

        // A section that is not a table.
        let m = message(from_toml("server = 3\n"));
        assert_contains(&m, "server must be a section of settings");
    }

    #[test]
    fn key_list_matches_the_parser() {
        let mut toml = String::new();
        for (section, keys) in KEYS {
            toml.push_str(&format!("[{section}]\n"));
            for key in *keys {
                toml.push_str(&format!("{key} = \"\"\n"));
            }
        }
        let figment = Figment::from(Toml::string(&toml));
        figment
            .extract::<RawConfig>()
            .expect("every listed key is known to the parser");
        let raw = RawConfig::default();
        // Every field of the parser is listed (the Debug of the raw structs names them).
        let debug = format!("{raw:?}");
        let listed: usize = KEYS.iter().map(|(_, keys)| keys.len()).sum();
        assert_eq!(debug.matches(": None").count(), listed, "{debug}");
    }

    #[test]
    fn bad_database_url_is_refused() {
        let m = message(from_toml(
            "[database]\nurl = \"mysql://root@localhost/timebox\"\n",
        ));
        assert_contains(
            &m,
            "database.url = \"mysql://root@localhost/timebox\" is not a supported database URL",
        );
        assert_contains(&m, "sqlite://timebox.db");
        assert_contains(&m, "postgres://");

        let m = message(from_toml("[database]\nurl = \"postgres://\"\n"));
        assert_contains(&m, "database.url = \"postgres://\" is incomplete");

        // A password in the URL never shows up in a message.
        let m = message(from_toml(
            "[database]\nurl = \"mysql://root:hunter2@db/timebox\"\n",
        ));
        assert!(!m.contains("hunter2"), "{m}");
        assert_contains(&m, "mysql://root:[redacted]@db/timebox");

        for ok in [
            "sqlite::memory:",
            "sqlite:timebox.db",
            "sqlite:///var/lib/timebox/timebox.db",
            "postgresql://db/timebox",
        ] {
            from_toml(&format!("[database]\nurl = \"{ok}\"\n"))
                .unwrap_or_else(|e| panic!("{ok} refused: {e}"));
        }
    }

    #[test]
    fn other_values_are_checked() {
        let m = message(from_toml("[database]\nmax_connections = 0\n"));
        assert_contains(&m, "database.max_connections = 0 is out of range: the pool size must be a whole number between 1 and 200");
        let m = message(from_toml("[database]\nmax_connections = 201\n"));
        assert_contains(&m, "database.max_connections = 201 is out of range");
        let m = message(with_env(
            "",
            &[("TIMEBOX_DATABASE__MAX_CONNECTIONS", "lots")],
        ));
        assert_contains(&m, "database.max_connections = \"lots\" is not a number");

        let m = message(from_toml("[server]\nbind = \"localhost:3000\"\n"));
        assert_contains(
            &m,
            "server.bind = \"localhost:3000\" is not an address and port",
        );
        let m = message(from_toml("[server]\nbind = 3000\n"));
        assert_contains(&m, "server.bind = 3000 is not a string: found a number");

        let m = message(from_toml(
            "[server]\npublic_url = \"timebox.example.com\"\n",
        ));
        assert_contains(&m, "server.public_url = \"timebox.example.com\" is not an http(s) URL: it must start with http:// or https://");
        let m = message(from_toml("[server]\npublic_url = \"https://\"\n"));
        assert_contains(&m, "is missing a host");

        let m = message(from_toml("[log]\nformat = \"xml\"\n"));
        assert_contains(&m, "log.format = \"xml\" is not a log format");
        let m = message(from_toml("[log]\nlevel = \" \"\n"));
        assert_contains(&m, "log.level = \" \" is empty");

        let m = message(with_env("", &[("TIMEBOX_REAPER__ENABLED", "yes")]));
        assert_contains(&m, "reaper.enabled = \"yes\" is not true or false");

        let m = message(from_toml("[identity_center]\nregion = \"US East\"\n"));
        assert_contains(
            &m,
            "identity_center.region = \"US East\" is not an AWS region",
        );
        let m = message(from_toml(
            "[identity_center]\ninstance_arn = \"ssoins-123\"\n",
        ));
        assert_contains(
            &m,
            "identity_center.instance_arn = \"ssoins-123\" is not an Identity Center instance ARN",
        );
        let m = message(from_toml(
            "[identity_center]\nidentity_store_id = \"d-12\"\n",
        ));
        assert_contains(
            &m,
            "identity_center.identity_store_id = \"d-12\" is not an identity store ID",
        );

        // Empty optional values mean "not set".
        let c = with_env(
            "[identity_center]\nregion = \"us-east-1\"\n",
            &[("TIMEBOX_IDENTITY_CENTER__REGION", "")],
        )
        .expect("valid");
        assert_eq!(c.identity_center.region, None);
        let c = from_toml("[identity_center]\nidentity_store_id = \"a1b2c3d4-1234-5678-9abc-def012345678\"\nregion = \"us-gov-west-1\"\ninstance_arn = \"arn:aws-us-gov:sso:::instance/ssoins-72231d7d1e0a5bcd\"\n")
            .expect("valid");
        assert_eq!(c.identity_center.region.as_deref(), Some("us-gov-west-1"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let e = from_toml(
            "[server]\nbind = \"nowhere\"\n[reaper]\ninterval = \"0s\"\n[log]\nformat = \"xml\"\n",
        )
        .expect_err("refused");
        let ConfigError::Multiple(errors) = &e else {
            panic!("expected several problems, got {e}");
        };
        assert_eq!(errors.len(), 3);
        let m = e.to_string();
        assert_contains(&m, "the configuration has 3 problems:");
        assert_contains(&m, "\n  - server.bind = \"nowhere\"");
        assert_contains(&m, "\n  - reaper.interval = \"0s\"");
        assert_contains(&m, "\n  - log.format = \"xml\"");
    }

    #[test]
    fn toml_syntax_errors_are_reported() {
        let m = message(from_toml("[server\nbind = 1\n"));
        assert_contains(&m, "could not be parsed");
        assert_contains(&m, "TOML");
    }

    #[test]
    fn secret_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write_file(&dir, "db-password", "s3cr3t with spaces \n");
        let toml = format!(
            "[database]\nurl = \"postgres://timebox@db/timebox\"\npassword_file = \"{}\"\n",
            path.display()
        );
        let c = from_toml(&toml).expect("valid");
        let password = c.database.password.as_ref().expect("password set");
        assert_eq!(password.expose(), "s3cr3t with spaces ");

        // Also through resolve_secret directly, with CRLF.
        let crlf = write_file(&dir, "crlf", "abc\r\n");
        let s = resolve_secret("smtp", "password", None, Some(crlf)).expect("readable");
        assert_eq!(s.as_ref().map(Secret::expose), Some("abc"));
        assert!(resolve_secret("smtp", "password", None, None)
            .expect("ok")
            .is_none());

        let empty = write_file(&dir, "empty", "\n");
        let e = resolve_secret("smtp", "password", None, Some(empty.clone())).expect_err("empty");
        assert_contains(
            &e.to_string(),
            &format!(
                "smtp.password_file = \"{}\" names an empty file",
                empty.display()
            ),
        );
    }

    #[test]
    fn secret_and_file_together_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write_file(&dir, "pw", "x\n");
        let toml = format!(
            "[database]\nurl = \"postgres://timebox@db/timebox\"\npassword = \"inline\"\npassword_file = \"{}\"\n",
            path.display()
        );
        let m = message(from_toml(&toml));
        assert_contains(
            &m,
            "database.password and database.password_file are both set; set only one of them",
        );
        assert!(!m.contains("inline"), "{m}");

        // An empty file key from the environment clears the file's value.
        let c = with_env(&toml, &[("TIMEBOX_DATABASE__PASSWORD_FILE", "")]).expect("valid");
        assert_eq!(
            c.database.password.as_ref().map(Secret::expose),
            Some("inline")
        );
    }

    #[test]
    fn missing_secret_file_is_refused_with_path() {
        let m = message(from_toml(
            "[database]\nurl = \"postgres://timebox@db/timebox\"\npassword_file = \"/nonexistent/timebox/pw\"\n",
        ));
        assert_contains(
            &m,
            "database.password_file = \"/nonexistent/timebox/pw\" could not be read",
        );
        assert_contains(&m, "or set database.password instead");
    }

    #[test]
    fn database_password_rules() {
        let m = message(from_toml("[database]\npassword = \"pw\"\n"));
        assert_contains(
            &m,
            "database.password is set, but database.url (sqlite://timebox.db) is a SQLite database",
        );
        let m = message(from_toml(
            "[database]\nurl = \"postgres://u:inurl@db/t\"\npassword = \"pw\"\n",
        ));
        assert_contains(
            &m,
            "database.password is set, but database.url already contains a password",
        );
        assert!(!m.contains("inurl"), "{m}");

        let c = from_toml("[database]\nurl = \"postgres://timebox@db:5432/timebox?sslmode=require\"\npassword = \"p@ss/w:rd\"\n")
            .expect("valid");
        assert_eq!(
            c.database.connect_url().expose(),
            "postgres://timebox:p%40ss%2Fw%3Ard@db:5432/timebox?sslmode=require"
        );
        let c = from_toml("[database]\nurl = \"postgres://db/timebox\"\npassword = \"pw\"\n")
            .expect("valid");
        assert_eq!(
            c.database.connect_url().expose(),
            "postgres://:pw@db/timebox"
        );
        let c = from_toml("").expect("valid");
        assert_eq!(c.database.connect_url().expose(), "sqlite://timebox.db");
    }

    #[test]
    fn secrets_do_not_leak() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(secret.expose(), "hunter2");

        let c = from_toml(
            "[database]\nurl = \"postgres://timebox@db/timebox\"\npassword = \"hunter2\"\n",
        )
        .expect("valid");
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert_contains(&debug, "password: Some([redacted])");
        assert!(!format!("{:?}", c.database.connect_url()).contains("hunter2"));

        let c = from_toml("[database]\nurl = \"postgres://timebox:hunter2@db/timebox\"\n")
            .expect("valid");
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert_eq!(
            c.database.redacted_url(),
            "postgres://timebox:[redacted]@db/timebox"
        );

        let env = EnvOverrides::from_vars([("TIMEBOX_DATABASE__PASSWORD", "hunter2")]);
        assert!(!format!("{env:?}").contains("hunter2"));

        let m = message(from_toml(
            "[database]\nurl = \"postgres://db/t\"\npassword = 12345\n",
        ));
        assert_contains(&m, "database.password = [redacted] is not a string");
        assert!(!m.contains("12345"), "{m}");
    }

    #[test]
    fn env_var_names() {
        assert_eq!(
            env_var_name("identity_center.portal_session"),
            "TIMEBOX_IDENTITY_CENTER__PORTAL_SESSION"
        );
        assert_eq!(
            env_var_name("database.password_file"),
            "TIMEBOX_DATABASE__PASSWORD_FILE"
        );
    }

    #[test]
    fn example_file_and_docs_cover_every_key() {
        let example = include_str!("../../timebox.example.toml");
        load_from(Figment::from(Toml::string(example)))
            .unwrap_or_else(|e| panic!("timebox.example.toml is refused: {e}"));
        let docs = include_str!("../../docs/configuration.md");
        for (section, keys) in KEYS {
            assert_contains(example, &format!("[{section}]"));
            for key in *keys {
                let written = example.lines().any(|line| {
                    let line = line.trim_start_matches(['#', ' ']);
                    line.starts_with(&format!("{key} ="))
                });
                assert!(
                    written,
                    "timebox.example.toml does not show {section}.{key}"
                );
                let dotted = format!("{section}.{key}");
                assert_contains(example, &env_var_name(&dotted));
                assert_contains(docs, &format!("`{dotted}`"));
                assert_contains(docs, &env_var_name(&dotted));
            }
        }
    }
}
