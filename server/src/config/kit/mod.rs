//! The kit every section is read with; it knows no section.
//!
//! A section is one function, `fn read(keys: &mut Keys) -> Self`, that asks [`Keys`]
//! for each of its keys with the key's default and parser. That one function is the
//! section's parser, its defaults ([`defaults`] reads it over nothing), its key list
//! ([`list_keys`], for hints and the docs test) and its unknown-key check (a key
//! present but never asked for is unknown). Problems are collected, not returned, so
//! every problem is reported at once.

mod error;
mod hints;
mod secret;
mod values;

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use figment::value::{Dict, Value};
use figment::Figment;

pub use error::ConfigError;
pub use hints::{edit_distance, env_var_name, SectionKeys, ENV_PREFIX, ENV_SEPARATOR};
pub(crate) use hints::{misspelt_key, ENV_SOURCE_NAME};
pub use secret::{resolve_secret, Secret};
pub(crate) use values::*;

/// The state shared by every section while the configuration is read.
struct Checker<'f> {
    figment: &'f Figment,
    /// Every section and its keys, for the top level's hints (empty while listing).
    known: &'f [SectionKeys],
    errors: Vec<ConfigError>,
    /// The sections read so far, with the leaf keys they asked for.
    sections: Vec<SectionKeys>,
}

impl<'f> Checker<'f> {
    fn new(figment: &'f Figment, known: &'f [SectionKeys]) -> Self {
        Self {
            figment,
            known,
            errors: Vec::new(),
            sections: Vec::new(),
        }
    }
}

/// One section's values while it is read: asking for a key takes its value out, so
/// what is left at the end is unknown.
///
/// Ask for every key before returning early: a key present but not asked for is
/// reported as unknown.
pub(crate) struct Keys<'c, 'f> {
    check: &'c mut Checker<'f>,
    /// Dotted name of the section (`notify.slack`); empty at the top level.
    path: String,
    /// The values not asked for yet.
    values: Dict,
    /// Every key and sub-section asked for, in order (the "expected" of hints).
    asked: Vec<&'static str>,
    /// This section's entry in [`Checker::sections`].
    slot: usize,
}

/// Reads `figment` (on top of the defaults) with `read`, the top-level section.
/// `known` lists every section's keys for the top level's hints ([`list_keys`]).
pub(crate) fn load<T>(
    figment: &Figment,
    known: &[SectionKeys],
    read: impl FnOnce(&mut Keys<'_, '_>) -> T,
) -> Result<T, ConfigError> {
    let root: Dict = figment.extract().map_err(hints::unparsable)?;
    let mut check = Checker::new(figment, known);
    let value = Keys::read(&mut check, String::new(), root, read);
    match ConfigError::from_many(check.errors) {
        None => Ok(value),
        Some(error) => Err(error),
    }
}

/// What `read` gives for no values at all: the defaults. Defaults are valid, so
/// nothing is reported.
pub(crate) fn defaults<T>(read: impl FnOnce(&mut Keys<'_, '_>) -> T) -> T {
    let figment = Figment::new();
    let mut check = Checker::new(&figment, &[]);
    let value = Keys::read(&mut check, String::new(), Dict::new(), read);
    debug_assert!(check.errors.is_empty(), "{:?}", check.errors);
    value
}

/// Every section `read` reads and the keys it asks for, in reading order.
pub(crate) fn list_keys<T>(read: impl FnOnce(&mut Keys<'_, '_>) -> T) -> Vec<SectionKeys> {
    let figment = Figment::new();
    let mut check = Checker::new(&figment, &[]);
    Keys::read(&mut check, String::new(), Dict::new(), read);
    check
        .sections
        .into_iter()
        .filter(|s| !s.name.is_empty())
        .collect()
}

impl<'f> Keys<'_, 'f> {
    /// Runs `read` over `values` as the section `path`, then reports what it did not
    /// ask for.
    fn read<T>(
        check: &mut Checker<'f>,
        path: String,
        values: Dict,
        read: impl FnOnce(&mut Keys<'_, 'f>) -> T,
    ) -> T {
        let slot = check.sections.len();
        check.sections.push(SectionKeys {
            name: path.clone(),
            keys: Vec::new(),
        });
        let mut keys = Keys {
            check,
            path,
            values,
            asked: Vec::new(),
            slot,
        };
        let value = read(&mut keys);
        keys.report_unknown();
        value
    }

    fn report_unknown(self) {
        let check = self.check;
        for field in self.values.keys() {
            let error =
                hints::unknown_key(check.figment, check.known, &self.path, field, &self.asked);
            check.errors.push(error);
        }
    }

    /// The dotted name of `key` in this section, such as `database.password`.
    pub(crate) fn dotted(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Takes the value of a leaf key, recording that the section has it.
    fn take(&mut self, key: &'static str) -> Option<Value> {
        self.asked.push(key);
        self.check.sections[self.slot].keys.push(key);
        self.values.remove(key)
    }

    /// The sub-section `name` (`[notify.slack]` in `[notify]`, every section at the
    /// top level), read with `read`. A value that is not a table is reported, and the
    /// section is read as if empty.
    pub(crate) fn section<T>(
        &mut self,
        name: &'static str,
        read: impl FnOnce(&mut Keys<'_, 'f>) -> T,
    ) -> T {
        self.asked.push(name);
        let path = self.dotted(name);
        let values = match self.values.remove(name) {
            None => Dict::new(),
            Some(Value::Dict(_, values)) => values,
            Some(other) => {
                let error = ConfigError::NotASection {
                    found: describe(&other),
                    origin: hints::origin_of(self.check.figment, &path),
                    key: path.clone(),
                };
                self.check.errors.push(error);
                Dict::new()
            }
        };
        Keys::read(self.check, path, values, read)
    }

    /// `parse(value)`, or `default` when the key is not set. On error, records it and
    /// returns `default` so that later keys are still checked.
    pub(crate) fn value<T>(
        &mut self,
        key: &'static str,
        default: T,
        parse: impl FnOnce(&Value) -> Result<T, Problem>,
    ) -> T {
        let Some(raw) = self.take(key) else {
            return default;
        };
        match parse(&raw) {
            Ok(value) => value,
            Err(problem) => {
                self.invalid(key, render(&raw), problem);
                default
            }
        }
    }

    /// An optional string key; empty means unset. `check` refuses a wrong one.
    pub(crate) fn optional(
        &mut self,
        key: &'static str,
        example: &str,
        check: impl FnOnce(&str) -> Result<(), Problem>,
    ) -> Option<String> {
        self.value(key, None, |v| {
            let s = expect_str(v, example)?.trim();
            if s.is_empty() {
                return Ok(None);
            }
            check(s)?;
            Ok(Some(s.to_owned()))
        })
    }

    /// A duration key within `range`; `what` names it in the out-of-range message
    /// and `fix` says how to pick a value. The default is also the example shown.
    pub(crate) fn duration(
        &mut self,
        key: &'static str,
        default: Duration,
        range: RangeInclusive<Duration>,
        what: &str,
        fix: &str,
    ) -> Duration {
        let example = quote(&human(default));
        self.value(key, default, |v| {
            duration_in(v, &example, &range, what, fix)
        })
    }

    /// The secret key `key`, given inline or as `file_key` (`key` + `_file`; see
    /// [`resolve_secret`]). Its value never appears in messages.
    pub(crate) fn secret(&mut self, key: &'static str, file_key: &'static str) -> Option<Secret> {
        self.secret_and_key(key, file_key).map(|(secret, _)| secret)
    }

    /// [`Keys::secret`], with the key it was given by: `key` or `file_key`.
    pub(crate) fn secret_and_key(
        &mut self,
        key: &'static str,
        file_key: &'static str,
    ) -> Option<(Secret, &'static str)> {
        let inline = match self.take(key) {
            None => None,
            Some(Value::String(_, s)) => Some(s),
            Some(other) => {
                let problem = Problem::new(
                    "not a string",
                    format!("found {}", kind_of(&other)),
                    "write the secret as a quoted string",
                );
                self.invalid(key, "[redacted]".to_owned(), problem);
                None
            }
        };
        let file = self.value(file_key, None, |v| {
            expect_str(v, "\"/run/secrets/timebox-db-password\"").map(|s| Some(PathBuf::from(s)))
        });
        let from = if file.as_ref().is_some_and(|p| !p.as_os_str().is_empty()) {
            file_key
        } else {
            key
        };
        match resolve_secret(&self.path, key, inline, file) {
            Ok(secret) => secret.map(|s| (s, from)),
            Err(e) => {
                self.check.errors.push(e);
                None
            }
        }
    }

    /// Records that the value of `key` (shown as `value`) is wrong.
    pub(crate) fn invalid(&mut self, key: &str, value: String, problem: Problem) {
        let key = self.dotted(key);
        self.check.errors.push(ConfigError::Invalid {
            origin: hints::origin_of(self.check.figment, &key),
            key,
            value,
            problem: format!("{}: {}", problem.problem, problem.detail),
            fix: problem.fix,
        });
    }

    /// Records that `key` does not agree with another key: `{key} {detail}; {fix}`.
    pub(crate) fn inconsistent(
        &mut self,
        key: &str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.check.errors.push(ConfigError::Inconsistent {
            key: self.dotted(key),
            detail: detail.into(),
            fix: fix.into(),
        });
    }
}
