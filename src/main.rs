//! The `fleetsim` command: parse, turn the flags into settings, dispatch, and turn errors
//! into one line and an exit code.

use std::process::ExitCode;

use fleetsim::cli;
use fleetsim::settings::Settings;

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
    let result = cli.command.settings().and_then(|settings| match settings {
        Settings::Exporter(settings) => fleetsim::exporter::run(settings),
        Settings::Generate(settings) => fleetsim::history::run(settings),
        Settings::Report(settings) => fleetsim::report::run(settings),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleetsim: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
