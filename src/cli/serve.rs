//! `lrs-autopilot serve`: the Azure Functions custom handler. The host starts it (see `host.json`)
//! and talks to it on `127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT`.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context as _;
use tracing::info;

use super::{resolve, runtime, telemetry};
use crate::config::Config;
use crate::functions::{AppState, router};

/// Arguments of `serve`. Everything else comes from the `LRS_*` variables (see the README).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The port to listen on (127.0.0.1 only).
    #[arg(long, env = "FUNCTIONS_CUSTOMHANDLER_PORT", default_value_t = 8080)]
    port: u16,
}

/// Runs `serve` until SIGTERM or Ctrl-C.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::from_env().context("bad configuration")?;
    if let Some(bad) = config
        .containers
        .iter()
        .find(|c| crate::chain::contains_reserved_word(c))
    {
        anyhow::bail!(
            "bad configuration: LRS_CONTAINERS names {bad:?}, which contains \"{}\": LRS refuses \
             that word (in any case) in a backup URI's container or folder names; move the backups \
             to a container named without it",
            crate::chain::RESERVED_WORD
        );
    }
    let rt = runtime()?;
    rt.block_on(async move {
        let pipeline = resolve::azure_pipeline(&config)?;
        telemetry::export_metrics(pipeline.metrics());
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let instances: Vec<String> = config
            .targets
            .instances()
            .iter()
            .map(|t| t.resource_id())
            .collect();
        info!(%addr, ?instances, containers = ?config.containers, "custom handler listening");
        axum::serve(listener, router(AppState { pipeline }))
            .with_graceful_shutdown(shutdown())
            .await
            .context("server failed")?;
        info!("custom handler stopped");
        Ok(ExitCode::SUCCESS)
    })
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
