//! How a key is named in messages: where its value came from (a file, an environment
//! variable), the environment variable that sets it, and "did you mean" hints for a
//! key nobody knows.

use figment::{Figment, Metadata, Profile, Source};

use super::ConfigError;

/// Prefix of every environment override.
pub const ENV_PREFIX: &str = "TIMEBOX_";
/// Separates the section from the key in an environment override.
pub const ENV_SEPARATOR: &str = "__";
/// The name of the environment provider's metadata, so origins can name the variable.
pub(crate) const ENV_SOURCE_NAME: &str = "environment variable";

/// One section and its keys as they are written in the file, such as `notify.email`
/// and `smtp_host, smtp_port, …` (sub-sections are sections of their own).
#[derive(Debug, Clone)]
pub struct SectionKeys {
    /// The dotted name of the section.
    pub name: String,
    pub keys: Vec<&'static str>,
}

/// The environment variable that sets a dotted key:
/// `identity_center.portal_session` → `TIMEBOX_IDENTITY_CENTER__PORTAL_SESSION`.
pub fn env_var_name(key: &str) -> String {
    let parts: Vec<String> = key.split('.').map(str::to_ascii_uppercase).collect();
    format!("{ENV_PREFIX}{}", parts.join(ENV_SEPARATOR))
}

/// `database_url` → `database.url`: a known key written with one underscore.
pub(crate) fn misspelt_key(key: &str, sections: &[SectionKeys]) -> Option<String> {
    sections.iter().find_map(|s| {
        key.strip_prefix(s.name.as_str())
            .and_then(|rest| rest.strip_prefix('_'))
            .filter(|rest| s.keys.contains(rest))
            .map(|rest| format!("{}.{rest}", s.name))
    })
}

/// The error for `field`, unknown in `section` (empty at the top level) whose keys
/// are `expected`.
pub(crate) fn unknown_key(
    figment: &Figment,
    sections: &[SectionKeys],
    section: &str,
    field: &str,
    expected: &[&str],
) -> ConfigError {
    let key = if section.is_empty() {
        field.to_owned()
    } else {
        format!("{section}.{field}")
    };
    ConfigError::UnknownKey {
        hint: unknown_key_hint(sections, section, field, expected),
        origin: origin_of(figment, &key),
        key,
    }
}

fn unknown_key_hint(
    sections: &[SectionKeys],
    section: &str,
    field: &str,
    expected: &[&str],
) -> String {
    if section.is_empty() {
        if let Some(key) = misspelt_key(field, sections) {
            return format!(
                "did you mean {key}? In an environment variable, separate the section \
                     from the key with two underscores: {}",
                env_var_name(&key)
            );
        }
        if let Some(s) = sections.iter().find(|s| s.keys.contains(&field)) {
            let name = &s.name;
            return format!("did you mean {name}.{field}? Put it under the [{name}] header");
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

/// The candidate nearest to `word` by edit distance, if it is near enough (at most
/// two edits, or a third of the word).
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= 2 || *d * 3 <= word.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The number of single-character edits that turn `a` into `b` (Levenshtein); the
/// policy file's hints use it too.
pub fn edit_distance(a: &str, b: &str) -> usize {
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
pub(crate) fn origin_of(figment: &Figment, key: &str) -> Option<String> {
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

/// The sources could not be read at all (TOML syntax): every error figment found.
pub(crate) fn unparsable(error: figment::Error) -> ConfigError {
    let errors = error
        .into_iter()
        .map(|e| ConfigError::Unparsable {
            origin: e
                .metadata
                .as_ref()
                .map(|md| describe_source(md, &e.path.join(".")))
                .unwrap_or_else(|| "the configuration".to_owned()),
            message: e.kind.to_string(),
        })
        .collect();
    ConfigError::from_many(errors).unwrap_or_else(|| ConfigError::Unparsable {
        origin: "the configuration".to_owned(),
        message: "unknown error".to_owned(),
    })
}
