//! A verified predicate as the type of its kind.
//!
//! Verification validates a predicate against its schema and then reads it into the
//! kind's type from `ledger_core::predicate`, so that everything downstream (gates,
//! history, show, the stages) reads typed fields instead of looking up JSON members.
//! [`AnyPredicate`] holds whichever kind it is; [`Typed`] asks for one kind.

use ledger_core::predicate::{
    self, BuildPredicate, CommandPredicate, DecisionPredicate, DeploymentPredicate, Header,
    ManifestPredicate, Predicate, SmokePredicate, TimingPredicate,
};
use ledger_core::ArtifactKind;

/// A verified predicate, read into the type of its kind. Every verified
/// [`Artifact`](crate::Artifact) has one: [`Evidence::check`](crate::Evidence::check)
/// reads it right after the schema check, and a predicate that passes its schema but
/// does not read is a verification problem.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per verified artifact, which `Checked` already boxes"
)]
pub enum AnyPredicate {
    /// `commit` and `integration`.
    Command(CommandPredicate),
    Build(BuildPredicate),
    Manifest(ManifestPredicate),
    Deployment(DeploymentPredicate),
    Smoke(SmokePredicate),
    Decision(DecisionPredicate),
    Timing(TimingPredicate),
}

impl AnyPredicate {
    /// Reads a (schema-valid) predicate of `kind`.
    pub fn read(kind: ArtifactKind, value: &serde_json::Value) -> Result<Self, serde_json::Error> {
        use predicate::from_value;
        Ok(match kind {
            ArtifactKind::Commit | ArtifactKind::Integration => {
                AnyPredicate::Command(from_value(value)?)
            }
            ArtifactKind::Build => AnyPredicate::Build(from_value(value)?),
            ArtifactKind::Manifest => AnyPredicate::Manifest(from_value(value)?),
            ArtifactKind::Deployment => AnyPredicate::Deployment(from_value(value)?),
            ArtifactKind::Smoke => AnyPredicate::Smoke(from_value(value)?),
            ArtifactKind::Decision => AnyPredicate::Decision(from_value(value)?),
            ArtifactKind::Timing => AnyPredicate::Timing(from_value(value)?),
        })
    }

    /// The fields every predicate carries.
    pub fn header(&self) -> &Header {
        match self {
            AnyPredicate::Command(p) => &p.header,
            AnyPredicate::Build(p) => &p.header,
            AnyPredicate::Manifest(p) => &p.header,
            AnyPredicate::Deployment(p) => &p.header,
            AnyPredicate::Smoke(p) => &p.header,
            AnyPredicate::Decision(p) => &p.header,
            AnyPredicate::Timing(p) => &p.header,
        }
    }

    /// The environment of per-environment evidence (deploy, smoke).
    pub fn environment(&self) -> Option<&str> {
        match self {
            AnyPredicate::Deployment(p) => Some(&p.environment),
            AnyPredicate::Smoke(p) => Some(&p.environment),
            _ => None,
        }
    }
}

/// A predicate type an [`AnyPredicate`] may hold.
pub trait Typed: Predicate {
    /// What to call evidence of this type in a problem.
    const WHAT: &'static str;
    /// The predicate, if `any` holds this type.
    fn from_any(any: &AnyPredicate) -> Option<&Self>;
}

macro_rules! typed {
    ($($ty:ident => $variant:ident, $what:literal;)*) => {$(
        impl Typed for $ty {
            const WHAT: &'static str = $what;
            fn from_any(any: &AnyPredicate) -> Option<&Self> {
                match any {
                    AnyPredicate::$variant(p) => Some(p),
                    _ => None,
                }
            }
        }
    )*};
}

typed! {
    CommandPredicate => Command, "command";
    BuildPredicate => Build, "build";
    ManifestPredicate => Manifest, "manifest";
    DeploymentPredicate => Deployment, "deployment";
    SmokePredicate => Smoke, "smoke";
    DecisionPredicate => Decision, "decision";
    TimingPredicate => Timing, "timing";
}
