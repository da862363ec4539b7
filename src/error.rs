//! The program's errors, each one line, each with its exit code.

use crate::config::{ConfigError, printable};

/// What went wrong, and so how the process exits.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags: exit 2.
    #[error("{}", printable(.0))]
    Usage(String),
    /// A bad config file, as `file:line: why`: exit 2, as for flags.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Everything else (a port in use, an unwritable file): exit 1.
    #[error("{}", printable(.0))]
    Runtime(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Config(_) => 2,
            Error::Runtime(_) => 1,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
