//! The small parsers every section shares: a value as written (TOML, or text from the
//! environment) → a Rust value, or the [`Problem`] that names what is wrong and the fix.
//! They know no key: [`super::Keys`] adds the key, the value and where it was set.

use std::fmt::Write as _;
use std::ops::RangeInclusive;
use std::time::Duration;

use figment::value::{Num, Value};

/// What is wrong with one value; [`super::Keys`] adds the key, the value and the
/// origin. Rendered as `{key} = {value} is {problem}: {detail}; {fix}`.
#[derive(Debug)]
pub(crate) struct Problem {
    pub(crate) problem: String,
    pub(crate) detail: String,
    pub(crate) fix: String,
}

impl Problem {
    pub(crate) fn new(
        problem: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            problem: problem.into(),
            detail: detail.into(),
            fix: fix.into(),
        }
    }
}

/// What kind of value this is, for "found …" in messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
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

/// A value as it would be written in TOML, for messages (a password in a URL is
/// redacted).
pub(crate) fn render(value: &Value) -> String {
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

/// How a value that should have been a section reads in a message: `the number 3`.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::String(..) | Value::Char(..) => format!("the string {}", render(value)),
        Value::Bool(_, b) => format!("the boolean {b}"),
        Value::Num(_, n) => format!("the number {}", render_num(*n)),
        other => kind_of(other).to_owned(),
    }
}

fn render_num(n: Num) -> String {
    n.to_u128()
        .map(|v| v.to_string())
        .or_else(|| n.to_i128().map(|v| v.to_string()))
        .or_else(|| n.to_f64().map(|v| v.to_string()))
        .unwrap_or_else(|| "a number".to_owned())
}

pub(crate) fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The text of a string value; `example` is shown in the fix when it is not one.
pub(crate) fn expect_str<'v>(value: &'v Value, example: &str) -> Result<&'v str, Problem> {
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

/// A string that may not be empty (after trimming); `empty` says why it is needed.
pub(crate) fn non_empty(value: &Value, example: &str, empty: Problem) -> Result<String, Problem> {
    let s = expect_str(value, example)?.trim();
    if s.is_empty() {
        Err(empty)
    } else {
        Ok(s.to_owned())
    }
}

/// The option among `all` whose `spelling` is `text` (after trimming), if any.
pub(crate) fn one_of<T: Copy>(text: &str, all: &[T], spelling: fn(T) -> &'static str) -> Option<T> {
    let text = text.trim();
    all.iter().copied().find(|option| spelling(*option) == text)
}

/// A whole number, written as a TOML integer or (from the environment) as text;
/// `None` for anything else.
pub(crate) fn whole_number(value: &Value) -> Option<i128> {
    match value {
        Value::Num(_, n) => n
            .to_i128()
            .or_else(|| n.to_u128().and_then(|n| i128::try_from(n).ok())),
        Value::String(_, s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `true` or `false`, as a TOML boolean or as text (any case).
pub(crate) fn parse_bool(value: &Value) -> Result<bool, Problem> {
    let problem = || Problem::new("not true or false", "it is a switch", "use true or false");
    match value {
        Value::Bool(_, b) => Ok(*b),
        Value::String(_, s) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
        Value::String(_, s) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(problem()),
    }
}

/// A list of words: a TOML array of strings, or (from an environment variable) one
/// string of comma-separated words. Empty words are dropped.
pub(crate) fn parse_list(value: &Value, example: &str) -> Result<Vec<String>, Problem> {
    let items: Vec<String> = match value {
        Value::Array(_, items) => items
            .iter()
            .map(|v| expect_str(v, example).map(|s| s.trim().to_owned()))
            .collect::<Result<_, _>>()?,
        Value::String(_, s) => s.split(',').map(|s| s.trim().to_owned()).collect(),
        other => {
            return Err(Problem::new(
                "not a list",
                format!("found {}", kind_of(other)),
                format!("write a list of strings such as [{example}], or in an environment variable a comma-separated string"),
            ))
        }
    };
    Ok(items.into_iter().filter(|s| !s.is_empty()).collect())
}

/// Refuses what is not an `http(s)://host…` URL, or has a fragment; `what` says what
/// it must point at and `example` is one.
pub(crate) fn http_url(s: &str, example: &str, what: &str) -> Result<(), Problem> {
    match url::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            if u.fragment().is_some() {
                return Err(Problem::new(
                    "not usable",
                    "it must not contain a fragment (#…)",
                    format!("set it to {what}, such as {example}"),
                ));
            }
            Ok(())
        }
        _ => Err(Problem::new(
            "not an http(s) URL",
            "it must start with http:// or https:// and name a host",
            format!("set it to {what}, such as {example}"),
        )),
    }
}

/// A duration with a unit, such as `"15s"` or `"1h 30m"`.
pub(crate) fn parse_duration(value: &Value, example: &str) -> Result<Duration, Problem> {
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

/// A duration within `range`; `example` is shown in fixes, `what` names the value in
/// the out-of-range message (`the reaper interval`) and `fix` says how to pick one.
pub(crate) fn duration_in(
    value: &Value,
    example: &str,
    range: &RangeInclusive<Duration>,
    what: &str,
    fix: &str,
) -> Result<Duration, Problem> {
    let d = parse_duration(value, example)?;
    if !range.contains(&d) {
        return Err(Problem::new(
            "out of range",
            format!(
                "{what} must be between {} and {}",
                human(*range.start()),
                human(*range.end())
            ),
            fix,
        ));
    }
    Ok(d)
}

/// `n` seconds.
pub(crate) const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `n` minutes.
pub(crate) const fn mins(n: u64) -> Duration {
    Duration::from_secs(n * 60)
}

/// `n` hours.
pub(crate) const fn hours(n: u64) -> Duration {
    Duration::from_secs(n * 3600)
}

/// `n` days.
pub(crate) const fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

/// `15m`, `7d`, `1h 30m`, `0s`.
pub(crate) fn human(d: Duration) -> String {
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

/// An AWS region code: lowercase words and a number joined by dashes (`us-east-1`).
pub(crate) fn is_region(s: &str) -> bool {
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

/// `(index where the authority starts, authority)` of a `scheme://authority/…` URL.
pub(crate) fn authority(url: &str) -> Option<(usize, &str)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some((start, &rest[..end]))
}

/// Whether the URL's user-info part holds a password (`user:password@`).
pub(crate) fn url_has_password(url: &str) -> bool {
    authority(url)
        .and_then(|(_, a)| a.rfind('@').map(|at| &a[..at]))
        .is_some_and(|userinfo| userinfo.contains(':'))
}

/// The URL with its password replaced by `[redacted]`, for messages and logs.
pub(crate) fn redact_url_password(url: &str) -> String {
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

/// Percent-encodes everything but the unreserved characters of RFC 3986.
pub(crate) fn percent_encode(s: &str) -> String {
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
