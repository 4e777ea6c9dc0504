//! Exit codes and how failures are shown: what went wrong, then a hint of what to do.

use ledger_pipeline::ErrorClass;
use std::fmt::Display;
use std::process::ExitCode;

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Success = 0,
    StageFailed = 1,
    BadInput = 2,
    Denied = 3,
    VerificationFailed = 4,
    Infrastructure = 5,
}

impl From<Code> for ExitCode {
    fn from(c: Code) -> ExitCode {
        ExitCode::from(c as u8)
    }
}

impl From<ErrorClass> for Code {
    fn from(c: ErrorClass) -> Code {
        match c {
            ErrorClass::Input => Code::BadInput,
            ErrorClass::Denied => Code::Denied,
            ErrorClass::Verification => Code::VerificationFailed,
            ErrorClass::Infrastructure => Code::Infrastructure,
        }
    }
}

/// A failure to report: message, optional hint, exit code.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: Code,
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    pub fn new(code: Code, message: impl Display) -> Self {
        Failure {
            code,
            message: message.to_string(),
            hint: None,
        }
    }

    pub fn input(message: impl Display) -> Self {
        Failure::new(Code::BadInput, message)
    }

    pub fn hint(mut self, hint: impl Display) -> Self {
        self.hint = Some(hint.to_string());
        self
    }

    pub fn print(&self) {
        say!("error: {}", self.message);
        if let Some(h) = &self.hint {
            say!("hint: {h}");
        }
    }
}

impl From<ledger_pipeline::Error> for Failure {
    fn from(e: ledger_pipeline::Error) -> Self {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let text = s.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = s.source();
        }
        Failure {
            code: e.class().into(),
            message,
            hint: e.hint(),
        }
    }
}

impl From<ledger_verify::Error> for Failure {
    fn from(e: ledger_verify::Error) -> Self {
        ledger_pipeline::Error::from(e).into()
    }
}

impl From<ledger_pipeline::DockerError> for Failure {
    fn from(e: ledger_pipeline::DockerError) -> Self {
        ledger_pipeline::Error::from(e).into()
    }
}

impl From<ledger_verify::StoreError> for Failure {
    fn from(e: ledger_verify::StoreError) -> Self {
        ledger_pipeline::Error::from(e).into()
    }
}

/// Shorthand for results that fail with a [`Failure`].
pub type Result<T> = std::result::Result<T, Failure>;
