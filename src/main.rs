//! The `lrs-autopilot` binary: parse the command line, run it, and choose the exit code.
use std::process::ExitCode;

fn main() -> ExitCode {
    lrs_autopilot::cli::main()
}
