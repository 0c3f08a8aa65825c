//! `[log]`: what the server writes to standard output: human-readable lines or JSON,
//! and which lines (a tracing filter).

use std::fmt;

use super::kit::{expect_str, non_empty, one_of, Keys, Problem};

/// `[log]`: what the server writes to standard output.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `text` or `json`. Default `text`.
    pub format: LogFormat,
    /// A tracing `EnvFilter` directive, such as `info` or `info,sqlx=warn`.
    /// Default `info`.
    pub level: String,
}

impl LogConfig {
    pub(super) fn read(keys: &mut Keys<'_, '_>) -> Self {
        Self {
            format: keys.value("format", LogFormat::Text, |v| {
                let text = expect_str(v, "\"text\"")?.to_ascii_lowercase();
                let all = [LogFormat::Text, LogFormat::Json];
                one_of(&text, &all, LogFormat::as_str).ok_or_else(|| {
                    Problem::new(
                        "not a log format",
                        "the formats are text and json",
                        "use \"text\" for human-readable lines or \"json\" for one JSON object \
                         per line",
                    )
                })
            }),
            level: keys.value("level", "info".to_owned(), |v| {
                let empty = Problem::new(
                    "empty",
                    "it says which log lines are written",
                    "use a tracing filter such as \"info\", \"debug\" or \"info,sqlx=warn\", \
                     or remove the key for the default \"info\"",
                );
                non_empty(v, "\"info\"", empty)
            }),
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

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_contains, from_toml, message};

    #[test]
    fn log_values_are_checked() {
        let m = message(from_toml("[log]\nformat = \"xml\"\n"));
        assert_contains(&m, "log.format = \"xml\" is not a log format");
        let m = message(from_toml("[log]\nlevel = \" \"\n"));
        assert_contains(&m, "log.level = \" \" is empty");
    }
}
