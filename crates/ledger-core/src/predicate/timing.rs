//! The timing predicate of the `decide` stage (`timing.v1.schema.json`): per-stage
//! timing of the chain and the lead time from the commit stage to the decision.

use super::header::Header;
use super::Predicate;
use crate::schema::Document;
use crate::stage::{ArtifactKind, Stage};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What `decide` records as timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingPredicate {
    /// The shared fields; `stage` is `decide`.
    #[serde(flatten)]
    pub header: Header,
    /// The latest verified attempt of every stage that ran, then the decision.
    pub stages: Vec<StageTime>,
    /// From the commit stage's start (or the earliest start) to the decision's end.
    pub lead_time_ms: u64,
    /// The sum of every stage's own duration.
    pub total_stage_ms: u64,
}

/// One stage's line in the timing record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTime {
    /// The stage.
    pub stage: Stage,
    /// Its attempt timed.
    pub attempt: u32,
    /// The key of that attempt's evidence.
    pub key: String,
    /// When its work started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When its work finished.
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    /// Its own wall time.
    pub duration_ms: u64,
}

impl Predicate for TimingPredicate {
    const DOCUMENTS: &'static [Document] = &[Document::Predicate(ArtifactKind::Timing)];
}
