//! `ledger-verify`: reading evidence back and deciding whether it holds.
//!
//! Everything that checks evidence lives here, so that an auditor's `ledger verify`,
//! a stage's gate and the history queries behind `show`, `log` and `status` share one
//! definition of "verified" — and so that this path links no container engine and no
//! HTTP client (tidy checks it): it needs only the pure formats (`ledger-core`), the
//! rules (`ledger-policy`) and the store (`ledger-store`).
//!
//! * [`evidence`] verifies one artifact or one SHA's chain; a verified [`Artifact`] can
//!   only be made there.
//! * [`layout`] ties a statement to the key it is stored under; [`typed`] holds a
//!   verified predicate as the type of its kind.
//! * [`read`] is the bulk read behind it: objects hashed once, a read-ahead
//!   [`read::Snapshot`], listings split into artifacts and strays.
//! * [`walk`] is the whole store at once (`verify --all`).
//! * [`gate`] gathers the latest evidence a gate requires and applies the policy.
//! * [`history`] answers questions about the past from verified evidence only:
//!   latest decision, ever promoted, already built.
//! * [`trust`] is the policy's root of trust: which policy is in force (signed by a
//!   threshold of its owners) and every policy that ever was.
//! * [`tlog`] reads the store's log of every object written (a hash chain with
//!   signed checkpoints); [`logged`] holds evidence to it, so deleted, hidden or
//!   replaced objects fail verification and gates.
//! * [`parallel`] spreads independent checks (signatures) over the cores, asked once.
//! * [`show`] is a chain as people read it and the store as a history (`show`, `log`).

pub mod chain;
mod companion;
pub mod error;
pub mod evidence;
pub mod gate;
pub mod history;
pub mod image;
pub mod layout;
pub mod logged;
pub mod parallel;
pub mod read;
pub mod show;
pub mod tlog;
pub mod trust;
pub mod typed;
pub mod walk;

pub use error::{Error, ErrorClass};
pub use evidence::{Artifact, Checked, Evidence};
pub use gate::GateReport;
pub use ledger_policy::{default_policy_json, zoned_policy_json, Policy};
/// Reading a regular file under a hard limit: every file `ledger` reads, user files too.
pub use ledger_store::file;
pub use ledger_store::{ObjectKey, Store, StoreError, StoreLocation};
pub use trust::SignedPolicy;
