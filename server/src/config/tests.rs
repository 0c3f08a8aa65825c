//! Tests across sections: the layers (defaults, file, environment), where values
//! came from, unknown keys, and the example file and docs against the key list.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use app::domain::PortalSession;
use figment::providers::{Format, Toml};
use figment::Figment;

use super::testing::{assert_contains, from_toml, message, with_env, write_file};
use super::*;

/// Held by tests that read or change the process environment (`load`).
static PROCESS_ENV: Mutex<()> = Mutex::new(());

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
fn group_names_can_come_from_the_environment() {
    let c = with_env(
        "[oidc]\nissuer = \"https://login.example.com\"\nclient_id = \"timebox\"\n",
        &[(
            "TIMEBOX_OIDC__GROUP_NAMES",
            "5f1c6a1e-0b7d-4c5e-9a51-3d2f7e8a9b01=timebox-requesters, 8a3e2b7c-4d1f-4e6a-b2c9-6f0d1e2a3b02=timebox-approvers",
        )],
    )
    .expect("valid");
    let names = c.oidc.expect("oidc").group_names;
    assert_eq!(
        names,
        vec![
            (
                "5f1c6a1e-0b7d-4c5e-9a51-3d2f7e8a9b01".to_owned(),
                "timebox-requesters".to_owned()
            ),
            (
                "8a3e2b7c-4d1f-4e6a-b2c9-6f0d1e2a3b02".to_owned(),
                "timebox-approvers".to_owned()
            ),
        ]
    );
    let m = message(with_env(
        "[oidc]\nissuer = \"https://login.example.com\"\nclient_id = \"timebox\"\n",
        &[("TIMEBOX_OIDC__GROUP_NAMES", "5f1c6a1e timebox-requesters")],
    ));
    assert_contains(&m, "<id>=<name>");
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
    for section in keys() {
        toml.push_str(&format!("[{}]\n", section.name));
        for key in &section.keys {
            toml.push_str(&format!("{key} = \"\"\n"));
        }
    }
    // Every listed key is known to the parser: whatever else an empty value breaks,
    // no key is unknown.
    if let Err(e) = from_toml(&toml) {
        let m = e.to_string();
        assert!(!m.contains("unknown key"), "{m}");
        assert!(!m.contains("must be a section"), "{m}");
    }
    // Every section is listed, and each of its keys once (the list is read from the
    // sections themselves, so no key can be parsed but missing from it).
    let names: Vec<&str> = keys().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "server",
            "database",
            "identity_center",
            "aws",
            "reaper",
            "revocation",
            "log",
            "oidc",
            "session",
            "notify",
            "notify.slack",
            "notify.email",
            "notify.webhook",
            "evidence",
            "policy",
            "audit"
        ]
    );
    for section in keys() {
        let mut unique = section.keys.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), section.keys.len(), "{}", section.name);
    }
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
fn unknown_keys_and_wrong_values_are_reported_together() {
    let m = message(from_toml("[server]\nbind = \"nowhere\"\nfoo = 1\n"));
    assert_contains(&m, "the configuration has 2 problems:");
    assert_contains(&m, "\n  - server.bind = \"nowhere\"");
    assert_contains(&m, "\n  - unknown key server.foo");
}

#[test]
fn toml_syntax_errors_are_reported() {
    let m = message(from_toml("[server\nbind = 1\n"));
    assert_contains(&m, "could not be parsed");
    assert_contains(&m, "TOML");
}

#[test]
fn secrets_do_not_leak() {
    let secret = Secret::new("hunter2");
    assert_eq!(format!("{secret:?}"), "[redacted]");
    assert_eq!(format!("{secret}"), "[redacted]");
    assert_eq!(secret.expose(), "hunter2");

    let c =
        from_toml("[database]\nurl = \"postgres://timebox@db/timebox\"\npassword = \"hunter2\"\n")
            .expect("valid");
    let debug = format!("{c:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert_contains(&debug, "password: Some([redacted])");
    assert!(!format!("{:?}", c.database.connect_url()).contains("hunter2"));

    let c =
        from_toml("[database]\nurl = \"postgres://timebox:hunter2@db/timebox\"\n").expect("valid");
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
    let example = include_str!("../../../timebox.example.toml");
    load_from(Figment::from(Toml::string(example)))
        .unwrap_or_else(|e| panic!("timebox.example.toml is refused: {e}"));
    let docs = include_str!("../../../docs/configuration.md");
    for SectionKeys {
        name: section,
        keys,
    } in keys()
    {
        assert_contains(example, &format!("[{section}]"));
        for key in keys {
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
