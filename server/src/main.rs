//! `timebox [--config FILE]`: loads and validates the configuration, then serves until
//! SIGINT/SIGTERM. A bad configuration stops start-up with the fix in the message.
//! `timebox audit verify|export|keygen …`: the auditor's commands (docs/audit.md); the work
//! is `timebox_server::audit`'s, this file only parses their arguments.

// The Leptos pages are deeply nested view types; laying them out needs more than
// the default depth.
#![recursion_limit = "256"]

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: timebox [--config FILE] [--check-config]

  --config FILE     the TOML configuration (default: ./timebox.toml if present;
                    TIMEBOX_CONFIG works too). TIMEBOX_* variables override it.
  --check-config    validate the configuration and exit

       timebox audit verify [--config FILE] [--database URL]
                            [--checkpoints FILE|DIR|s3://BUCKET/PREFIX] [--public-key FILE]
       timebox audit export [--config FILE] [--database URL] [--from T] [--to T]
                            [--format jsonl|csv] [--out FILE]
       timebox audit keygen --out FILE";

const AUDIT_USAGE: &str = "usage: timebox audit verify [--config FILE] [--database URL] [--checkpoints FILE|DIR|s3://BUCKET/PREFIX] [--public-key FILE]
       timebox audit export [--config FILE] [--database URL] [--from T] [--to T] [--format jsonl|csv] [--out FILE]
       timebox audit keygen --out FILE

  verify            walks the whole audit chain and checks every event, link and the
                    head; with --public-key, every signed checkpoint too. Exits 0 when
                    everything holds, 1 when something does not (the first broken event
                    is printed), 2 on a usage error, 3 when it could not be checked.
  --database URL    the database (default: database.url from the configuration)
  --checkpoints FILE  the checkpoint file (audit.checkpoint_file), or a DIR of
                    them (every file in it), or
  --checkpoints s3://BUCKET/PREFIX  the objects of the S3 sink (audit.checkpoint_s3),
                    reached with [aws] from --config; each must also be under a
                    COMPLIANCE-mode Object Lock. Without --checkpoints, and with
                    --public-key, the checkpoints stored in the database
  --public-key FILE the public key, 64 hex digits (printed by keygen)
  export            writes the events from the first at or after --from to the last
                    before --to (a UTC day such as 2026-11-01, or an RFC 3339 time;
                    both optional) with their hashes, as JSON lines (verifiable
                    offline, docs/audit.md) or CSV, to --out FILE (never
                    overwritten) or standard output
  keygen --out FILE writes a new signing key (never overwriting) and prints its
                    public key";

/// Stack for each runtime worker thread. Server-side rendering of a page nests many
/// futures; tokio's default 2 MiB overflowed on the request page in a debug build, so
/// the workers get room to spare (it is address space, touched only as used).
const WORKER_STACK: usize = 16 * 1024 * 1024;

fn main() -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(WORKER_STACK)
        .build()
    {
        Ok(runtime) => runtime.block_on(run()),
        Err(e) => {
            eprintln!("timebox: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("audit") {
        return audit(std::env::args().skip(2).collect()).await;
    }
    let mut config_path: Option<PathBuf> = std::env::var_os("TIMEBOX_CONFIG").map(PathBuf::from);
    let mut check_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => match args.next() {
                Some(p) => config_path = Some(PathBuf::from(p)),
                None => {
                    eprintln!("timebox: --config needs a file\n\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--check-config" => check_only = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("timebox: unknown argument {other:?}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let config = match timebox_server::config::load(config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("timebox: configuration error: {e}");
            return ExitCode::from(78); // EX_CONFIG
        }
    };
    if check_only {
        if let Some(path) = &config.audit.signing_key_file {
            match timebox_server::audit::CheckpointSigner::from_file(path) {
                Ok(signer) => println!(
                    "audit checkpoints are signed; public key {}",
                    signer.public_key_hex()
                ),
                Err(e) => {
                    eprintln!("timebox: audit.signing_key_file: {e}");
                    return ExitCode::from(78);
                }
            }
        }
        match timebox_server::policy::check_file(&config.policy) {
            Ok(0) if config.policy.file.is_none() => {
                println!("configuration is valid (no policy.file: nobody may ask for access)")
            }
            Ok(n) => println!("configuration is valid; the policy file has {n} policies"),
            Err(e) => {
                eprintln!("timebox: policy error: {e}");
                return ExitCode::from(78);
            }
        }
        return ExitCode::SUCCESS;
    }
    timebox_server::telemetry::init(&config.log);
    match timebox_server::run(config, timebox_server::shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "timebox stopped");
            eprintln!("timebox: {e}");
            if matches!(e, timebox_server::StartError::Policy(_)) {
                ExitCode::from(78) // EX_CONFIG: the policy file is configuration
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("timebox audit: {message}\n\n{AUDIT_USAGE}");
    ExitCode::from(2)
}

/// `--from`/`--to`: a UTC day (`2026-11-01`, its start) or an RFC 3339 time.
fn parse_bound(flag: &str, text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            format!("{flag} {text:?} is neither a UTC day (2026-11-01) nor an RFC 3339 time")
        })
}

/// `timebox audit export`: the events in `[from, to)` to `out` (or standard output).
async fn export(
    url: &str,
    window: [Option<String>; 2],
    format: Option<&str>,
    out: Option<PathBuf>,
) -> ExitCode {
    use timebox_server::audit::export::{export, ExportFormat};
    let [from, to] = match window.map(|w| w.map(|t| parse_bound("--from/--to", &t)).transpose()) {
        [Ok(from), Ok(to)] => [from, to],
        [Err(e), _] | [_, Err(e)] => return usage_error(&e),
    };
    if let (Some(f), Some(t)) = (from, to) {
        if t <= f {
            return usage_error("--to must be after --from");
        }
    }
    let Some(format) = ExportFormat::parse(format.unwrap_or("jsonl")) else {
        return usage_error("--format is jsonl or csv");
    };
    let store = match timebox_server::store::open_existing(url).await {
        Ok(store) => store,
        Err(e) => {
            eprintln!(
                "timebox audit export: cannot open the database {}: {e}",
                timebox_server::store::redact_url(url)
            );
            return ExitCode::from(3);
        }
    };
    let written = match out {
        Some(path) => match tokio::fs::File::create_new(&path).await {
            Ok(mut file) => export(store.as_ref(), from, to, format, &mut file).await,
            Err(e) => {
                eprintln!(
                    "timebox audit export: cannot create {} (it is never overwritten): {e}",
                    path.display()
                );
                return ExitCode::from(3);
            }
        },
        None => export(store.as_ref(), from, to, format, &mut tokio::io::stdout()).await,
    };
    match written {
        Ok(n) => {
            eprintln!("exported {n} audit events");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("timebox audit export: {e}");
            ExitCode::from(3)
        }
    }
}

/// `timebox audit …`.
async fn audit(args: Vec<String>) -> ExitCode {
    use timebox_server::audit;
    let mut args = args.into_iter();
    let command = args.next();
    let mut config_path: Option<PathBuf> = std::env::var_os("TIMEBOX_CONFIG").map(PathBuf::from);
    let mut database: Option<String> = None;
    let mut checkpoints: Option<String> = None;
    let mut public_key: Option<PathBuf> = None;
    let mut out: Option<PathBuf> = None;
    let mut window: [Option<String>; 2] = [None, None];
    let mut format: Option<String> = None;
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--help" | "-h" => {
                println!("{AUDIT_USAGE}");
                return ExitCode::SUCCESS;
            }
            "--config" | "-c" => "config",
            "--database" => "database",
            "--checkpoints" => "checkpoints",
            "--public-key" => "public-key",
            "--out" => "out",
            "--from" => "from",
            "--to" => "to",
            "--format" => "format",
            other => return usage_error(&format!("unknown argument {other:?}")),
        };
        let Some(value) = args.next() else {
            return usage_error(&format!("{arg} needs a value"));
        };
        match slot {
            "config" => config_path = Some(PathBuf::from(value)),
            "database" => database = Some(value),
            "checkpoints" => checkpoints = Some(value),
            "public-key" => public_key = Some(PathBuf::from(value)),
            "from" => window[0] = Some(value),
            "to" => window[1] = Some(value),
            "format" => format = Some(value),
            _ => out = Some(PathBuf::from(value)),
        }
    }
    if command.as_deref() != Some("export")
        && (window.iter().any(Option::is_some) || format.is_some())
    {
        return usage_error("--from, --to and --format are for export");
    }
    match command.as_deref() {
        Some("export") => {
            if checkpoints.is_some() || public_key.is_some() {
                return usage_error("--checkpoints and --public-key are for verify");
            }
            let url = match database {
                Some(url) => url,
                None => match timebox_server::config::load(config_path.as_deref()) {
                    Ok(c) => c.database.connect_url().expose().to_owned(),
                    Err(e) => {
                        eprintln!("timebox audit export: configuration error: {e}; or give --database URL");
                        return ExitCode::from(78);
                    }
                },
            };
            export(&url, window, format.as_deref(), out).await
        }
        Some("keygen") => {
            let Some(out) = out else {
                return usage_error("keygen needs --out FILE");
            };
            match audit::checkpoint::generate_key(&out) {
                Ok(signer) => {
                    println!("{}", signer.public_key_hex());
                    eprintln!(
                        "wrote the signing key to {}; set audit.signing_key_file to it, and give the public key above (stdout) to the auditor",
                        out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("timebox audit keygen: {e}");
                    ExitCode::from(3)
                }
            }
        }
        Some("verify") => {
            if out.is_some() {
                return usage_error("--out is for keygen");
            }
            if checkpoints.is_some() && public_key.is_none() {
                return usage_error(
                    "--checkpoints needs --public-key FILE to check their signatures",
                );
            }
            let s3 = match checkpoints.as_deref().filter(|c| c.starts_with("s3://")) {
                Some(text) => match timebox_server::config::S3Location::parse(text) {
                    Ok(location) => Some(location),
                    Err(why) => {
                        return usage_error(&format!("--checkpoints {text:?}: {why}"));
                    }
                },
                None => None,
            };
            // The configuration is read when something comes from it: the database
            // URL without --database, `[aws]` for an S3 source.
            let config = if database.is_none() || s3.is_some() {
                match timebox_server::config::load(config_path.as_deref()) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        let or = if s3.is_some() {
                            ""
                        } else {
                            "; or give --database URL"
                        };
                        eprintln!("timebox audit verify: configuration error: {e}{or}");
                        return ExitCode::from(78);
                    }
                }
            } else {
                None
            };
            let url = match (database, &config) {
                (Some(url), _) => url,
                (None, Some(c)) => c.database.connect_url().expose().to_owned(),
                (None, None) => return usage_error("give --database URL or --config FILE"),
            };
            let source = match (s3, checkpoints, &public_key) {
                (Some(location), _, _) => {
                    // Loaded above whenever the source is S3.
                    let c = config.unwrap_or_default();
                    audit::CheckpointSource::S3(
                        audit::S3Checkpoints::from_config(
                            &c.aws,
                            c.audit.checkpoint_s3_region.clone(),
                            location,
                            std::sync::Arc::new(timebox_server::metrics::Metrics::new()),
                        )
                        .await,
                    )
                }
                (None, Some(file), _) => audit::CheckpointSource::File(PathBuf::from(file)),
                (None, None, Some(_)) => audit::CheckpointSource::Database,
                (None, None, None) => audit::CheckpointSource::Nothing,
            };
            match audit::verify_database(&url, &source, public_key.as_deref()).await {
                Ok(report) => {
                    println!("{}", report.summary());
                    if public_key.is_none() {
                        println!("(no --public-key: signed checkpoints were not checked, so a chain rewritten with its head would pass)");
                    }
                    if report.is_intact() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("timebox audit verify: {e}");
                    ExitCode::from(3)
                }
            }
        }
        Some(other) => usage_error(&format!("unknown audit command {other:?}")),
        None => usage_error("which audit command?"),
    }
}
