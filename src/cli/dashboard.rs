//! `lrs-autopilot dashboard`: the migration dashboard on this machine, over the deployed pipeline's
//! state (same `LRS_*` variables as `status`, the operator's own Azure credentials) or a rehearsal
//! root (`--local`). It listens on loopback unless told otherwise.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::{resolve, runtime};
use crate::dashboard::{Dashboard, Links, process_token, router};
use crate::pipeline::system_clock;

/// Arguments of `dashboard`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show a rehearsal's state (`<root>/.lrs-autopilot`) instead of the deployed pipeline's.
    #[arg(long, value_name = "ROOT")]
    local: Option<PathBuf>,
    /// With --local: the state folder, if `rehearse --state` moved it.
    #[arg(long, requires = "local")]
    state: Option<PathBuf>,
    /// Where to listen. Anything but loopback shows every migration to the network.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
}

/// Runs `dashboard` until Ctrl-C.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let (pipeline, _staging) =
            resolve::pipeline_for(args.local.as_deref(), args.state.as_deref())?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() {
            eprintln!("warning: the dashboard listens on {addr}, not loopback: anyone who can reach it sees every migration");
        }
        let dashboard = Dashboard::new(pipeline, Links::local(), process_token(), system_clock());
        println!("dashboard: http://{addr}/ (Ctrl-C to stop)");
        axum::serve(listener, router(dashboard, addr))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("the dashboard server failed")?;
        Ok(ExitCode::SUCCESS)
    })
}
