//! `[database]`: where grants and the audit log are stored, the pool size, and the
//! PostgreSQL password kept apart from the URL so the URL can be logged.

use std::fmt;

use figment::value::Value;

use super::kit::{
    authority, expect_str, kind_of, percent_encode, redact_url_password, url_has_password,
    whole_number, Keys, Problem, Secret,
};

const MAX_DB_CONNECTIONS: u32 = 200;

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

impl DatabaseConfig {
    pub(super) fn read(keys: &mut Keys<'_, '_>) -> Self {
        let url = keys.value("url", "sqlite://timebox.db".to_owned(), parse_database_url);
        let max_connections = keys.value("max_connections", 10, parse_max_connections);
        let password = keys.secret_and_key("password", "password_file");
        let config = DatabaseConfig {
            url,
            max_connections,
            password: password.as_ref().map(|(p, _)| p.clone()),
        };
        let Some((_, key)) = password else {
            return config;
        };
        let key = keys.dotted(key);
        if config.is_sqlite() {
            keys.inconsistent(
                &key,
                format!(
                    "is set, but database.url ({}) is a SQLite database, which has no password",
                    config.redacted_url()
                ),
                format!("remove {key}, or point database.url at PostgreSQL (postgres://…)"),
            );
        } else if url_has_password(&config.url) {
            keys.inconsistent(
                &key,
                "is set, but database.url already contains a password",
                format!(
                    "keep the password in one place: take it out of database.url \
                     (recommended, so the URL can be logged) or remove {key}"
                ),
            );
        }
        config
    }

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
    let not_a_number =
        |detail: String| Problem::new("not a number", detail, "use a small number such as 10");
    let n = match (value, whole_number(value)) {
        (Value::Num(..), n) => n.ok_or_else(out_of_range)?,
        (Value::String(..), n) => {
            n.ok_or_else(|| not_a_number("the pool size is a whole number".to_owned()))?
        }
        (other, _) => return Err(not_a_number(format!("found {}", kind_of(other)))),
    };
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_DB_CONNECTIONS).contains(n))
        .ok_or_else(out_of_range)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_contains, from_toml, message, with_env, write_file};
    use super::super::{resolve_secret, Secret};

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
    fn pool_size_is_checked() {
        let m = message(from_toml("[database]\nmax_connections = 0\n"));
        assert_contains(&m, "database.max_connections = 0 is out of range: the pool size must be a whole number between 1 and 200");
        let m = message(from_toml("[database]\nmax_connections = 201\n"));
        assert_contains(&m, "database.max_connections = 201 is out of range");
        let m = message(with_env(
            "",
            &[("TIMEBOX_DATABASE__MAX_CONNECTIONS", "lots")],
        ));
        assert_contains(&m, "database.max_connections = \"lots\" is not a number");
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
}
