//! What the configuration tests share: loading from TOML text and environment
//! variables, and checking messages.

use std::path::PathBuf;

use figment::providers::{Format, Toml};
use figment::Figment;

use super::{load_from, Config, ConfigError, EnvOverrides};

/// The configuration from TOML text alone.
pub(super) fn from_toml(toml: &str) -> Result<Config, ConfigError> {
    load_from(Figment::from(Toml::string(toml)))
}

/// The configuration from TOML text and environment variables (`TIMEBOX_…`, value).
pub(super) fn with_env(toml: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    load_from(
        Figment::from(Toml::string(toml)).merge(EnvOverrides::from_vars(vars.iter().copied())),
    )
}

/// The message of a refused configuration.
pub(super) fn message(result: Result<Config, ConfigError>) -> String {
    match result {
        Ok(config) => panic!("expected the configuration to be refused, got {config:?}"),
        Err(e) => e.to_string(),
    }
}

#[track_caller]
pub(super) fn assert_contains(message: &str, needle: &str) {
    assert!(
        message.contains(needle),
        "message\n  {message}\ndoes not contain\n  {needle}"
    );
}

pub(super) fn write_file(dir: &tempfile::TempDir, name: &str, contents: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).expect("write temp file");
    path
}
