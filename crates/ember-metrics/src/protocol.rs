use serde::{Deserialize, Serialize};
use std::fmt;

use crate::MetricsError;

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
                let how = match sampling {
                    NegativeSampling::Uniform => "uniform",
                    NegativeSampling::Popularity => "popularity-weighted",
                };
                write!(f, "sampled: held-out items vs {negatives} {how} negatives")
            }
            Protocol::FixedNegatives => {
                write!(f, "sampled: held-out items vs the fixed negatives file")
            }
        }
    }
}
