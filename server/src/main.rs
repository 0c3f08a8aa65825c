//! `timebox [--config FILE]`: loads and validates the configuration, then serves until
//! SIGINT/SIGTERM. A bad configuration stops start-up with the fix in the message.

// The Leptos pages are deeply nested view types; laying them out needs more than
// the default depth.
#![recursion_limit = "256"]

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: timebox [--config FILE] [--check-config]

  --config FILE     the TOML configuration (default: ./timebox.toml if present;
                    TIMEBOX_CONFIG works too). TIMEBOX_* variables override it.
  --check-config    validate the configuration and exit";

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
