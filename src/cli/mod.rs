//! The command line: parse with clap, resolve configuration, call the same core and adapters the
//! server uses. Only this shell (and `main`) uses `anyhow`; it prints errors with their context and
//! chooses the exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod check_instance;
mod cutover;
mod dashboard;
mod demo;
mod inspect;
mod rehearse;
mod resolve;
mod restart;
mod resync;
mod serve;
mod simulate;
mod status;
mod telemetry;

/// Hands-off SQL Server → Azure SQL Managed Instance migrations with Log Replay Service.
#[derive(Debug, Parser)]
#[command(name = "lrs-autopilot", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read SQL Server backup headers (like RESTORE HEADERONLY), from each file's head and tail only.
    Inspect(inspect::Args),
    /// Plan a database folder's restore chain the way LRS will, and report every trap.
    Check(check::Args),
    /// Run the ARM-compatible LRS simulator as an HTTP server.
    SimulateLrs(simulate::Args),
    /// Run the Azure Functions custom handler (the Functions host starts this).
    Serve(serve::Args),
    /// Rehearse a whole migration of a folder of backups on this machine, with the simulator.
    Rehearse(rehearse::Args),
    /// Write a small synthetic estate and rehearse it: the whole idea in one command.
    Demo(demo::Args),
    /// Show every database's migration state.
    Status(status::Args),
    /// Declare the last backup of a database and let the pipeline complete the migration.
    Cutover(cutover::Args),
    /// Serve the migration dashboard (loopback by default).
    Dashboard(dashboard::Args),
    /// Start LRS again for a Lost, Failed or Expired migration, from the newest complete full backup.
    Restart(restart::Args),
    /// Record every backup blob missing from state (after lost events), as its event would have.
    Resync(resync::Args),
}

/// Runs the command line and returns the process exit code: 0 success, 1 a negative verdict
/// (invalid file, blocking finding), 2 an error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let servers = matches!(
        cli.command,
        Command::Serve(_) | Command::SimulateLrs(_) | Command::Dashboard(_)
    );
    // A rehearsal reports every alert in its own report; its log lines would only repeat them
    // (`RUST_LOG=lrs_autopilot=info` shows what the deployed pipeline would log).
    let rehearsal = matches!(cli.command, Command::Rehearse(_) | Command::Demo(_));
    let filter = match (servers, rehearsal) {
        (true, _) => "lrs_autopilot=info",
        (false, true) => "lrs_autopilot=error,lrs_autopilot::pipeline=off,lrs_autopilot::sim=off",
        (false, false) => "lrs_autopilot=warn",
    };
    let _telemetry = telemetry::init(filter, matches!(cli.command, Command::Serve(_)));
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::Check(args) => check::run(args),
        Command::SimulateLrs(args) => simulate::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Rehearse(args) => rehearse::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Status(args) => status::run(args),
        Command::Cutover(args) => cutover::run(args),
        Command::Dashboard(args) => dashboard::run(args),
        Command::Restart(args) => restart::run(args),
        Command::Resync(args) => resync::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// A multi-threaded tokio runtime for the commands that do network or file watching work.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
