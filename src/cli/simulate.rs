//! `lrs-autopilot simulate-lrs`: run the ARM-compatible LRS simulator as an HTTP server, over a
//! local folder laid out as `<root>/<container>/<folder>/<backups>`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::sim::{Faults, SimConfig, Storage};

/// Arguments of `simulate-lrs`. Every flag can also come from the environment variable named.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on, such as `127.0.0.1:8080` (`:0` picks a free port, printed on start).
    #[arg(long, env = "LRS_SIM_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Folder holding `<container>/<database folder>/<backup files>`.
    #[arg(
        long,
        env = "LRS_SIM_STORAGE_ROOT",
        required_unless_present = "storage_url"
    )]
    storage_root: Option<PathBuf>,
    /// Blob service URL (Azure or Azurite), read in the same layout: with a SAS in its query, or
    /// with a token from the environment (managed identity, Azure CLI).
    #[arg(long, env = "LRS_SIM_STORAGE_URL", conflicts_with = "storage_root")]
    storage_url: Option<String>,
    /// Restore speed in MiB/s.
    #[arg(long, env = "LRS_SIM_RESTORE_MBPS", default_value_t = 500.0)]
    restore_mbps: f64,
    /// The region every managed instance reports.
    #[arg(long, env = "LRS_SIM_LOCATION", default_value = "westeurope")]
    location: String,
    /// Seconds a start or delete operation runs (the short model). Without it, the start operation
    /// runs until the database is Online after completeRestore, or fails when it is dropped.
    #[arg(long, env = "LRS_SIM_OPERATION_SECS")]
    operation_secs: Option<f64>,
    /// Seconds completeRestore runs before the database is Online (hours on Business Critical).
    #[arg(long, env = "LRS_SIM_COMPLETE_SECS", default_value_t = 2.0)]
    complete_secs: f64,
    /// Rate (0..1) of 429 answers with Retry-After.
    #[arg(long, env = "LRS_SIM_THROTTLE_RATE", default_value_t = 0.0)]
    throttle_rate: f64,
    /// Retry-After seconds on injected 429s.
    #[arg(long, env = "LRS_SIM_RETRY_AFTER_SECS", default_value_t = 1)]
    retry_after_secs: u64,
    /// Rate (0..1) of 500 answers.
    #[arg(long, env = "LRS_SIM_SERVER_ERROR_RATE", default_value_t = 0.0)]
    server_error_rate: f64,
    /// Latency added to every ARM request, in milliseconds.
    #[arg(long, env = "LRS_SIM_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
    /// Rate (0..1) of 409 ConflictingDatabaseOperation answers to writes.
    #[arg(long, env = "LRS_SIM_CONFLICT_RATE", default_value_t = 0.0)]
    conflict_rate: f64,
    /// Make storage unreadable: jobs stall and show it in blockReason.
    #[arg(long, env = "LRS_SIM_STORAGE_FAILURE")]
    storage_failure: bool,
    /// Seed for the fault generator (the same seed replays the same faults).
    #[arg(long, env = "LRS_SIM_FAULT_SEED", default_value_t = 0)]
    fault_seed: u64,
    /// Answer every restoreDetails with this error code (such as BrokenRestorePlanNoFullBackup),
    /// with the HTTP status the spec documents for it.
    #[arg(long, env = "LRS_SIM_RESTORE_DETAILS_ERROR")]
    restore_details_error: Option<String>,
    /// Drop each database once, this many seconds after its start was accepted (a failover, a
    /// Business Critical update or the 30-day cancellation).
    #[arg(long, env = "LRS_SIM_DROP_AFTER_SECS")]
    drop_after_secs: Option<f64>,
    /// Turn off ARM's request throttling (token buckets: reads 250 + 25/s, writes 200 + 10/s per
    /// subscription).
    #[arg(long, env = "LRS_SIM_NO_THROTTLE")]
    no_throttle: bool,
    /// The instance's tier, update policy and storage.
    #[command(flatten)]
    instance: InstanceArgs,
}

/// The instance's facts the simulator serves (GET instance, Azure Monitor's used storage).
#[derive(Debug, Clone, clap::Args)]
pub struct InstanceArgs {
    /// The instance's tier: GeneralPurpose, NextGenGeneralPurpose or BusinessCritical.
    #[arg(long, env = "LRS_SIM_TIER", default_value = "GeneralPurpose")]
    pub tier: crate::preflight::Tier,
    /// The instance's update policy (databaseFormat): SQLServer2022, SQLServer2025 or
    /// AlwaysUpToDate.
    #[arg(long, env = "LRS_SIM_UPDATE_POLICY", default_value = "SQLServer2022")]
    pub update_policy: crate::preflight::UpdatePolicy,
    /// Reserved storage in GB (storageSizeInGB).
    #[arg(long, env = "LRS_SIM_STORAGE_GB", default_value_t = 32)]
    pub storage_gb: u64,
    /// Storage used in GB, as Azure Monitor's storage_space_used_mb reports it.
    #[arg(long, env = "LRS_SIM_STORAGE_USED_GB", default_value_t = 0.0)]
    pub storage_used_gb: f64,
}

/// Resolves the arguments into the simulator's settings.
fn resolve(args: &Args) -> anyhow::Result<SimConfig> {
    let storage = match (&args.storage_root, &args.storage_url) {
        (Some(root), None) => {
            anyhow::ensure!(
                root.is_dir(),
                "the storage root {} is not a folder",
                root.display()
            );
            Storage::Folder(root.clone())
        }
        (None, Some(url)) => {
            let parsed = url::Url::parse(url.trim())
                .map_err(|e| anyhow::anyhow!("--storage-url is not a url: {e}"))?;
            anyhow::ensure!(
                parsed.path_segments().is_some(),
                "--storage-url must be a blob service url such as https://<account>.blob.core.windows.net?<sas>"
            );
            Storage::BlobService(url.trim().to_owned())
        }
        _ => anyhow::bail!("give exactly one of --storage-root or --storage-url"),
    };
    anyhow::ensure!(
        args.restore_mbps.is_finite() && args.restore_mbps > 0.0,
        "--restore-mbps must be a positive number, not {}",
        args.restore_mbps
    );
    for (name, secs) in [
        ("--operation-secs", args.operation_secs),
        ("--complete-secs", Some(args.complete_secs)),
    ] {
        let Some(secs) = secs else { continue };
        anyhow::ensure!(
            secs.is_finite() && secs >= 0.0,
            "{name} must be zero or more seconds, not {secs}"
        );
    }
    let faults = Faults {
        throttle_rate: args.throttle_rate,
        retry_after_secs: args.retry_after_secs,
        server_error_rate: args.server_error_rate,
        latency_ms: args.latency_ms,
        conflict_rate: args.conflict_rate,
        storage_failure: args.storage_failure,
        seed: args.fault_seed,
        restore_details_errors: args
            .restore_details_error
            .iter()
            .map(|code| ("*".to_owned(), code.trim().to_owned()))
            .collect::<BTreeMap<_, _>>(),
        drop_after_secs: args.drop_after_secs,
        start_errors: BTreeMap::new(),
    };
    faults.validate().map_err(|e| {
        anyhow::anyhow!(
            "{}",
            e.replace("restoreDetailsErrors[\"*\"]", "--restore-details-error")
                .replace("dropAfterSecs", "--drop-after-secs")
        )
    })?;
    let mut config = SimConfig::folder(PathBuf::new());
    config.storage = storage;
    config.restore_mbps = args.restore_mbps;
    config.location = args.location.clone();
    config.operation_secs = args.operation_secs;
    config.complete_secs = args.complete_secs;
    config.faults = faults;
    config.throttle = !args.no_throttle;
    let used = args.instance.storage_used_gb;
    anyhow::ensure!(
        used.is_finite() && used >= 0.0,
        "--storage-used-gb must be a number of GB, 0 or more (got {used})"
    );
    config.tier = args.instance.tier;
    config.update_policy = args.instance.update_policy;
    config.storage_gb = args.instance.storage_gb;
    config.storage_used_gb = used;
    Ok(config)
}

/// Runs `simulate-lrs` until interrupted.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = resolve(&args)?;
    if !args.listen.ip().is_loopback() {
        tracing::warn!(listen = %args.listen, "the simulator has no authentication; anyone who can reach this address can drive it");
    }
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener
            .local_addr()
            .context("cannot read the bound address")?;
        let state = crate::sim::SimState::from_config(config)
            .context("cannot open the simulator's storage")?;
        println!("lrs simulator listening on http://{addr}");
        tracing::info!(%addr, "lrs simulator started");
        tokio::select! {
            result = crate::sim::serve_state(listener, state) => result.context("the simulator stopped")?,
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: stopping the simulator"),
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(extra: &[&str]) -> anyhow::Result<SimConfig> {
        let dir = std::env::temp_dir();
        let root = dir.to_string_lossy().into_owned();
        let mut argv = vec!["x", "--storage-root", root.as_str()];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(argv)?;
        resolve(&cli.args)
    }

    #[test]
    fn instance_flags_become_settings_and_bad_ones_are_refused() {
        let config = parse(&[
            "--tier",
            "BusinessCritical",
            "--update-policy",
            "AlwaysUpToDate",
            "--storage-gb",
            "64",
            "--storage-used-gb",
            "60.5",
        ])
        .expect("valid flags");
        assert_eq!(config.tier, crate::preflight::Tier::BusinessCritical);
        assert_eq!(
            config.update_policy,
            crate::preflight::UpdatePolicy::AlwaysUpToDate
        );
        assert_eq!(config.storage_gb, 64);
        assert_eq!(config.storage_used_gb, 60.5);
        let err = parse(&["--tier", "Premium"]).expect_err("unknown tier");
        assert!(err.to_string().contains("GeneralPurpose"), "{err}");
        let err = parse(&["--storage-used-gb=-1"]).expect_err("negative");
        assert!(err.to_string().contains("--storage-used-gb"), "{err}");
    }

    #[test]
    fn flags_become_settings() {
        let config = parse(&[
            "--restore-mbps",
            "2.5",
            "--throttle-rate",
            "0.25",
            "--latency-ms",
            "7",
        ])
        .expect("valid flags");
        assert_eq!(config.restore_mbps, 2.5);
        assert_eq!(config.faults.throttle_rate, 0.25);
        assert_eq!(config.faults.latency_ms, 7);
        assert_eq!(config.operation_secs, None, "the long model by default");
        assert_eq!(
            config.update_policy,
            crate::preflight::UpdatePolicy::SQLServer2022
        );
        assert!(config.throttle, "throttling on by default");

        let config = parse(&[
            "--operation-secs",
            "3",
            "--restore-details-error",
            "BrokenRestorePlanNoFullBackup",
            "--drop-after-secs",
            "60",
            "--no-throttle",
        ])
        .expect("valid flags");
        assert_eq!(config.operation_secs, Some(3.0));
        assert_eq!(
            config.faults.restore_details_errors["*"],
            "BrokenRestorePlanNoFullBackup"
        );
        assert_eq!(config.faults.drop_after_secs, Some(60.0));
        assert!(!config.throttle);
    }

    #[test]
    fn bad_values_are_refused_with_the_flag_name() {
        let err = parse(&["--restore-mbps", "0"]).expect_err("refused");
        assert!(err.to_string().contains("--restore-mbps"), "{err}");
        let err = parse(&["--conflict-rate", "2"]).expect_err("refused");
        assert!(err.to_string().contains("conflict rate"), "{err}");
        let err = parse(&["--operation-secs=-1"]).expect_err("refused");
        assert!(err.to_string().contains("--operation-secs"), "{err}");
        let err = parse(&["--drop-after-secs", "NaN"]).expect_err("refused");
        assert!(err.to_string().contains("--drop-after-secs"), "{err}");
        let err = parse(&["--restore-details-error", "not a code"]).expect_err("refused");
        assert!(err.to_string().contains("--restore-details-error"), "{err}");
        let err = Cli::try_parse_from(["x", "--storage-root", "/definitely/not/here"])
            .map_err(anyhow::Error::from)
            .and_then(|c| resolve(&c.args))
            .expect_err("refused");
        assert!(err.to_string().contains("is not a folder"), "{err}");
    }

    #[test]
    fn a_storage_url_is_kept_and_never_shown_with_its_sas() {
        let cli = Cli::try_parse_from([
            "x",
            "--storage-url",
            "http://127.0.0.1:10000/devstoreaccount1?sv=1&sig=SECRET",
        ])
        .expect("parses");
        let config = resolve(&cli.args).expect("valid");
        assert!(matches!(config.storage, Storage::BlobService(_)));
        assert!(!format!("{config:?}").contains("SECRET"));
        let cli = Cli::try_parse_from(["x", "--storage-url", "not a url"]).expect("parses");
        let err = resolve(&cli.args).expect_err("refused");
        assert!(
            err.to_string().contains("--storage-url is not a url"),
            "{err}"
        );
    }
}
