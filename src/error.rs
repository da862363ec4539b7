//! The program's errors, each one line, each with its exit code.

use std::fmt;

/// What went wrong, and so how the process exits.
#[derive(Debug)]
pub enum Error {
    /// Bad flags or a bad config file: exit 2.
    Usage(String),
    /// Everything else (a port in use, an unwritable file): exit 1.
    Runtime(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::Runtime(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Runtime(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::config::ConfigError> for Error {
    fn from(e: crate::config::ConfigError) -> Self {
        Error::Usage(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Error>;
