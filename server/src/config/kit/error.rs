//! [`ConfigError`]: why the configuration was refused, each variant one sentence that
//! names the key, says where its value came from and how to fix it.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

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
    /// No error, the one error, or all of them as [`ConfigError::Multiple`].
    pub(crate) fn from_many(mut errors: Vec<ConfigError>) -> Option<ConfigError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(ConfigError::Multiple(errors)),
        }
    }
}
