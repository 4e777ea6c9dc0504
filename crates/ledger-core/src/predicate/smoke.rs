//! The predicate of the `smoke` stage (`smoke.v1.schema.json`): HTTP checks run
//! against what was deployed, with their latencies.

use super::header::{Header, Input};
use super::{present, Predicate};
use crate::schema::Document;
use crate::sha::GitSha;
use crate::stage::ArtifactKind;
use serde::{Deserialize, Serialize};

/// What `smoke` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmokePredicate {
    /// The shared fields; `stage` is `smoke`.
    #[serde(flatten)]
    pub header: Header,
    /// The environment checked (a string, as in [`super::DeploymentPredicate`]).
    pub environment: String,
    /// Every configured check, in configuration order.
    pub checks: Vec<SmokeCheck>,
    /// Latency percentiles over the checks.
    pub latency_ms: Latency,
    /// Set (`true`) when this run is part of `ledger replay` or `ledger rollback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<bool>,
    /// For a replay or rollback: the manifest run again (key and envelope SHA-256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Input>,
    /// For a rollback only: `Some(Some(sha))` the SHA running when it began,
    /// `Some(None)` (`null`) when nothing ran; `None` (absent) otherwise.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub rollback_from: Option<Option<GitSha>>,
}

/// One HTTP check and what it got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmokeCheck {
    /// The check's name in `ledger.toml`.
    pub name: String,
    /// The request method.
    pub method: Method,
    /// The URL requested.
    pub url: String,
    /// The status that counts as success.
    pub expected_status: u16,
    /// The status answered; `None` (`null`) when nothing answered.
    pub status: Option<u16>,
    /// Latency of the last attempt, in milliseconds.
    pub latency_ms: f64,
    /// Whether the check passed.
    pub ok: bool,
    /// How many attempts were made (at least 1).
    pub attempts: u32,
    /// The configured latency limit, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_ms: Option<f64>,
    /// Why the check failed, when it did for a reason other than the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An HTTP method a smoke check may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
    /// `PATCH`.
    Patch,
    /// `OPTIONS`.
    Options,
}

impl Method {
    /// The method's name, as recorded (`GET`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Options => "OPTIONS",
        }
    }
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Slowest.
    pub max: f64,
}

impl Predicate for SmokePredicate {
    const DOCUMENTS: &'static [Document] = &[Document::Predicate(ArtifactKind::Smoke)];
}
