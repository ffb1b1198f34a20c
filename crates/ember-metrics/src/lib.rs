//! Ranking and classification metrics for recommenders, and the evaluation protocols that name
//! where each number comes from. Pure Rust: no tensors, no data frames.
//!
//! The evaluator takes, user by user, a list of candidate items with their scores and which of
//! them are relevant (held out), and averages the per-user metrics. How candidates are chosen
//! (all items, or sampled negatives) is the [`Protocol`]; the report always carries it.

#![deny(missing_docs)]

mod candidates;
mod evaluator;
pub mod names;
mod protocol;
pub mod ranking;

pub use candidates::{MIN_USERS, NegativeCounts};
pub use evaluator::{EvaluatorPart, GroupReport, MetricsReport, RankingEvaluator, rating_report};
pub use names::{RECALL_MIN_PREFIX, higher_is_better};
pub use protocol::{NegativeSampling, Protocol};

/// Errors of metric configuration.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MetricsError {
    /// A cut-off of zero was asked for.
    #[error("metric cut-off k must be at least 1, got 0")]
    ZeroCutoff,
    /// No cut-off was given.
    #[error("at least one metric cut-off k is needed")]
    NoCutoffs,
    /// A protocol with zero sampled negatives.
    #[error("a sampled protocol needs at least one negative per user, got 0")]
    ZeroNegatives,
}
