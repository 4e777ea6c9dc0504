//! The verification path's errors, and the classes every `ledger` error falls into.
//!
//! The class is what the binary turns into an exit code (README): bad input 2,
//! denied 3, verification 4, infrastructure 5. It is defined here, at the lowest crate
//! that reports errors to the CLI, so that `ledger-pipeline` and the CLI share it.
//! Evidence that does not hold is not an error of this crate: `Checked` carries it as
//! data, and a gate's denial is a `GateReport`; an `Err` means the store could not be
//! read, or a caller asked for evidence that must verify and it did not.

use ledger_store::StoreError;

/// What kind of failure an error is; one exit code each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Usage, configuration, keys, malformed input: exit 2.
    Input,
    /// A gate refused: exit 3.
    Denied,
    /// Evidence does not verify: exit 4.
    Verification,
    /// Store, engine or registry unreachable or failing: exit 5.
    Infrastructure,
}

impl ErrorClass {
    /// The class of a store failure.
    pub fn of_store(e: &StoreError) -> ErrorClass {
        match e {
            StoreError::Unsupported { .. }
            | StoreError::InvalidKey(_)
            | StoreError::InvalidLocation { .. } => ErrorClass::Input,
            StoreError::TooLarge { .. } | StoreError::NotRegular { .. } => ErrorClass::Verification,
            _ => ErrorClass::Infrastructure,
        }
    }
}

/// What stops a verification, a gate or a history query from giving an answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key} does not verify: {}", problems.join("; "))]
    EvidenceInvalid { key: String, problems: Vec<String> },
    /// The policy, or the root of trust it rests on, is not signed by its owners.
    /// A stage reports it as a denial (nothing ran); `verify` as a failed verification.
    #[error("{0}")]
    Untrusted(#[from] ledger_policy::TrustError),
}

impl Error {
    /// The class that decides the exit code.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Store(e) => ErrorClass::of_store(e),
            Error::EvidenceInvalid { .. } | Error::Untrusted(_) => ErrorClass::Verification,
        }
    }
}
