//! The `spotsim` command line: parse, call, map errors to exit codes (0
//! success, 2 bad input, 1 anything else). The commands and their flags are
//! in `spotsim::commands::cli`.

use std::process::ExitCode;

use clap::Parser;

use spotsim::commands::cli::{Cli, execute};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let code = failure.exit_code();
            if code != 0 {
                eprintln!("error: {failure}");
            }
            ExitCode::from(code)
        }
    }
}
