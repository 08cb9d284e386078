//! `diffusability`: how diffusion-friendly is a latent space?
//!
//! A thin layer over the library: parse arguments, resolve and validate everything before loading data,
//! run, print. Errors map to exit codes in one place: 0 success, 2 bad input or usage, 1 internal error.

mod args;
mod commands;
mod output;
mod progress;

use diffusability::Error;
use output::OutputError;

fn main() {
    // A panic is a bug in this program; say so in one line rather than with a backtrace.
    std::panic::set_hook(Box::new(|info| {
        output::stderr_line(&format!("internal error (please report it): {info}"));
    }));
    let code = match run() {
        Ok(()) => 0,
        Err(Failure::Error(e)) => {
            output::stderr_line(&format!("error: {}", e.message));
            e.exit_code()
        }
        Err(Failure::Output(OutputError::BrokenPipe)) => 0,
        Err(Failure::Output(OutputError::Other(m))) => {
            output::stderr_line(&format!("error: {m}"));
            1
        }
    };
    std::process::exit(code);
}

/// Everything that can end a command early.
pub enum Failure {
    Error(Error),
    Output(OutputError),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

impl From<OutputError> for Failure {
    fn from(e: OutputError) -> Self {
        Failure::Output(e)
    }
}

fn run() -> Result<(), Failure> {
    match args::parse()? {
        args::Command::Metrics(a) => commands::metrics::run(a),
        args::Command::Synth(a) => commands::synth::run(a),
        args::Command::Study(a) => commands::study::run(a),
        args::Command::Equivariance(a) => commands::equivariance::run(a),
        args::Command::Interpolate(a) => commands::interpolate::run(a),
        args::Command::Fd(a) => commands::fd::run(a),
        args::Command::Trajectory(a) => commands::trajectory::run(a),
        args::Command::List { markdown } => commands::list::run(markdown),
    }
}
