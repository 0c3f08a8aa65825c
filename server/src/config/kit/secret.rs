//! [`Secret`]: a value that never prints, and [`resolve_secret`]: a secret key given
//! inline (`key = "…"`) or as the path of a file holding it (`key_file = "/run/…"`).

use std::fmt;
use std::path::PathBuf;

use super::ConfigError;

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
/// Sections read secrets with [`super::Keys::secret`], which calls this.
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
