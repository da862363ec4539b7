//! The `fleetsim` command: parse, dispatch, and turn errors into one line and an exit code.

use std::process::ExitCode;

use fleetsim::cli::{self, Command};

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version: print as clap means them to be.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("fleetsim: {}", cli::one_line(&e));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Exporter(args) => fleetsim::exporter::run(args),
        Command::Generate(args) => fleetsim::history::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleetsim: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
