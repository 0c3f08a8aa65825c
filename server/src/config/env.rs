//! The environment layer: every `TIMEBOX_SECTION__KEY=value` as the text `value` at
//! `section.key`, for figment to merge over the file.

use std::fmt;

use figment::providers::Env;
use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

use super::kit::{env_var_name, misspelt_key, ENV_PREFIX, ENV_SEPARATOR, ENV_SOURCE_NAME};

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
    pub(super) vars: Vec<(String, String)>,
}

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
    key.contains('.') || misspelt_key(key, super::keys()).is_some()
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
