//! The `timebox` binary as an operator starts it: a bad configuration stops start-up
//! with the key and the fix; a good one creates and migrates the SQLite file.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn timebox() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_timebox"));
    // Only what the test sets: no TIMEBOX_* from the caller's environment.
    for (k, _) in std::env::vars() {
        if k.starts_with("TIMEBOX_") {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null());
    c
}

fn config_file(dir: &tempfile::TempDir, body: &str) -> std::path::PathBuf {
    let p = dir.path().join("timebox.toml");
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(body.as_bytes()).unwrap();
    p
}

#[test]
fn an_out_of_range_portal_session_stops_start_up_naming_the_key() {
    // Identity Center allows 15 minutes to 90 days.
    for wrong in ["5m", "91d"] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config_file(
            &dir,
            &format!("[identity_center]\nportal_session = \"{wrong}\"\n"),
        );
        let out = timebox().arg("--config").arg(&cfg).output().unwrap();
        assert_eq!(out.status.code(), Some(78));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("identity_center.portal_session = \"{wrong}\"")),
            "{err}"
        );
        assert!(err.contains("between 15m and 90d"), "{err}");
    }
}

#[test]
fn an_environment_override_is_validated_too() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(&dir, "");
    let out = timebox()
        .arg("--config")
        .arg(&cfg)
        .env("TIMEBOX_IDENTITY_CENTER__PORTAL_SESSION", "91d")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TIMEBOX_IDENTITY_CENTER__PORTAL_SESSION"),
        "{err}"
    );
}

#[test]
fn a_misspelt_key_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(&dir, "[identity_center]\nportal_sesion = \"8h\"\n");
    let out = timebox().arg("--config").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("portal_sesion"), "{err}");
    assert!(
        err.contains("portal_session"),
        "suggests the right key: {err}"
    );
}

#[test]
fn a_missing_config_file_is_named() {
    let out = timebox()
        .arg("--config")
        .arg("/nonexistent/timebox.toml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/timebox.toml"));
}

#[test]
fn check_config_accepts_the_annotated_example() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../timebox.example.toml");
    let out = timebox()
        .arg("--config")
        .arg(example)
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unreachable_database_stops_start_up_without_showing_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        &dir,
        "[server]\nbind = \"127.0.0.1:0\"\n[database]\nurl = \"postgres://timebox:hunter2@127.0.0.1:1/timebox\"\n",
    );
    let out = timebox().arg("--config").arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open the database"), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
}

#[test]
fn first_start_creates_and_migrates_the_sqlite_file_then_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let db = dir.path().join("data").join("timebox.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let cfg = config_file(
        &dir,
        &format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\n[database]\nurl = \"sqlite://{}\"\n",
            db.display()
        ),
    );
    let mut child = timebox()
        .arg("--config")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let ok = loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::Read;
            s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut resp = String::new();
            let _ = s.read_to_string(&mut resp);
            if resp.starts_with("HTTP/1.1 200") {
                break true;
            }
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(ok, "the server became ready");
    assert!(db.exists(), "the SQLite file was created");
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
}

#[test]
fn a_bad_policy_file_stops_start_up_naming_the_policy_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[[policy]]\nname = \"oops\"\nrequesters = [\"group:dev\"]\naccounts = [\"111122223333\"]\n\
         permission_sets = [\"AdministratorAccess\"]\nmax_duration = \"4h\"\napprovers = [\"group:dev\"]\n",
    )
    .unwrap();
    let db = dir.path().join("timebox.db");
    let cfg = config_file(
        &dir,
        &format!(
            "[server]\nbind = \"127.0.0.1:0\"\n[database]\nurl = \"sqlite://{}\"\n[policy]\nfile = \"{}\"\n",
            db.display(),
            policy.display()
        ),
    );
    // Both the check and a real start refuse, with the fix.
    for check in [true, false] {
        let mut c = timebox();
        c.arg("--config").arg(&cfg);
        if check {
            c.arg("--check-config");
        }
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "check={check}: {err}");
        assert!(
            err.contains(
                "policy \"oops\": approvers: group:dev is also the only requester group, so \
                 requesters would approve each other's requests"
            ),
            "check={check}: {err}"
        );
        assert!(err.contains(&policy.display().to_string()), "{err}");
    }
}

#[test]
fn check_config_accepts_the_example_policy() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../timebox.example.toml");
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/../policy.example.toml");
    let out = timebox()
        .arg("--config")
        .arg(example)
        .arg("--check-config")
        .env("TIMEBOX_POLICY__FILE", policy)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("the policy file has 4 policies"));
}
