use serde::{Deserialize, Serialize};
use std::fmt;

use crate::candidates::{negatives_noun, range};
use crate::{MetricsError, MetricsReport};

/// How sampled negatives are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NegativeSampling {
    /// Every item the user has not interacted with is equally likely.
    Uniform,
    /// Items are drawn in proportion to their training popularity.
    Popularity,
}

/// Which candidates each test user's held-out items are ranked against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Protocol {
    /// Every item in the catalogue but the user's known items (masked): every item they
    /// interacted with in the data, those below the implicit threshold included, as serving
    /// leaves them out; the held-out items being ranked stay, and so do the test items when
    /// validating.
    FullRanking,
    /// The held-out items plus `negatives` items the user never interacted with, drawn once
    /// (seeded) per user.
    Sampled {
        /// Negatives per user.
        negatives: usize,
        /// How they are drawn.
        #[serde(default = "uniform")]
        sampling: NegativeSampling,
    },
    /// The held-out items plus the negatives listed in a fixed file (the NCF `.test.negative`).
    FixedNegatives,
}

fn uniform() -> NegativeSampling {
    NegativeSampling::Uniform
}

impl Protocol {
    /// Checks the protocol's parameters.
    pub fn validate(&self) -> Result<(), MetricsError> {
        match self {
            Protocol::Sampled { negatives: 0, .. } => Err(MetricsError::ZeroNegatives),
            _ => Ok(()),
        }
    }

    /// Negatives each user is asked for: `Some` for a sampled protocol.
    pub fn asked(&self) -> Option<usize> {
        match self {
            Protocol::Sampled { negatives, .. } => Some(*negatives),
            _ => None,
        }
    }

    /// The protocol's name for `report`, a report of its candidates: when users had fewer
    /// unseen items than the negatives asked for, it says what was drawn instead.
    pub fn label(&self, report: &MetricsReport) -> String {
        let (Protocol::Sampled { sampling, .. }, Some(drawn)) = (self, &report.negatives) else {
            return self.to_string();
        };
        let (Some(asked), Some(fewer_max), Some(fewer_mean)) =
            (drawn.asked, drawn.fewer_max, drawn.fewer_mean)
        else {
            return self.to_string();
        };
        let how = sampling.adjective();
        if drawn.fewer_than_asked == report.users {
            let mean = if drawn.min == drawn.max {
                String::new()
            } else {
                format!("; mean {:.1}", drawn.mean)
            };
            return format!(
                "sampled: held-out items vs {} {how} {} ({asked} asked for: no user had that many unseen items{mean})",
                range(drawn.min, drawn.max),
                negatives_noun(drawn.min, drawn.max)
            );
        }
        format!(
            "{self} (fewer for {} of {} users: {}, mean {fewer_mean:.1})",
            drawn.fewer_than_asked,
            report.users,
            range(drawn.min, fewer_max)
        )
    }
}

impl NegativeSampling {
    /// How the negatives are drawn, in a report's words.
    fn adjective(self) -> &'static str {
        match self {
            NegativeSampling::Uniform => "uniform",
            NegativeSampling::Popularity => "popularity-weighted",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::FullRanking => {
                write!(f, "full ranking over all items, known items masked")
            }
            Protocol::Sampled {
                negatives,
                sampling,
            } => {
                let how = sampling.adjective();
                write!(f, "sampled: held-out items vs {negatives} {how} negatives")
            }
            Protocol::FixedNegatives => {
                write!(f, "sampled: held-out items vs the fixed negatives file")
            }
        }
    }
}
