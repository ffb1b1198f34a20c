//! Step 1: the audience of an item's campaign, with its control group.

use std::path::Path;

use super::{Arm, DEFAULT_CONTROL_SHARE};
use crate::rng::Rng;
use crate::table::AtomicFile;
use crate::{Because, DecideError, ExportedModel, Key, Known, Options, because_field, number};

/// How an audience is chosen.
#[derive(Debug, Clone)]
pub struct AudienceOptions {
    /// Customers in the audience (target and control together).
    pub budget: usize,
    /// The share of the audience held out as control, in [0, 1).
    pub control_share: f64,
    /// The seed of the control group's draw.
    pub seed: u64,
    /// Customers never to contact (opted out).
    pub exclude: Vec<Key>,
    /// Whether customers who already have the item are left out.
    pub known: Known,
    /// "Because of" items per member (0: none).
    pub explain: usize,
}

impl AudienceOptions {
    /// An audience of `budget` customers with the default control share, seed 0, no
    /// exclusions, owners left out and no explanations.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            control_share: DEFAULT_CONTROL_SHARE,
            seed: 0,
            exclude: Vec::new(),
            known: Known::Exclude,
            explain: 0,
        }
    }
}

/// One customer of an audience.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// External customer key.
    pub customer: Key,
    /// The model's score for the item.
    pub score: f32,
    /// Rank by score among the eligible customers (1 = best).
    pub rank: usize,
    /// Target or control.
    pub arm: Arm,
    /// The customer's own items that weigh most in the score.
    pub because: Vec<Because>,
}

/// An item's campaign audience, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Audience {
    /// External item key.
    pub item: Key,
    /// The members, by rank.
    pub members: Vec<Member>,
    /// Customers who could have been chosen (not having the item, not excluded).
    pub eligible: usize,
}

impl Audience {
    /// Members of `arm`.
    pub fn count(&self, arm: Arm) -> usize {
        self.members.iter().filter(|m| m.arm == arm).count()
    }

    /// Writes the audience as CSV (`customer,score,rank,group`, and `because` when the
    /// members carry explanations) under a temporary name, then renames it into place.
    pub fn write_csv(&self, path: &Path) -> Result<(), DecideError> {
        let explain = self.members.iter().any(|m| !m.because.is_empty());
        let mut file = AtomicFile::create(path)?;
        let mut header = vec!["customer", "score", "rank", "group"];
        if explain {
            header.push("because");
        }
        file.write_row(&header)?;
        for m in &self.members {
            let mut row = vec![
                m.customer.to_string(),
                number(m.score as f64),
                m.rank.to_string(),
                m.arm.as_str().to_string(),
            ];
            if explain {
                row.push(because_field(&m.because));
            }
            file.write_row(&row)?;
        }
        file.commit()
    }
}

/// The audience of `item` (see the module docs): the `budget` best-scored customers who do
/// not have it, `round(control_share × audience)` of them drawn at random (seeded) into the
/// control group.
pub fn select_audience(
    model: &ExportedModel,
    item: &Key,
    options: &AudienceOptions,
) -> Result<Audience, DecideError> {
    if options.budget == 0 {
        return Err(DecideError::Invalid("`budget` must be at least 1".into()));
    }
    if !(0.0..1.0).contains(&options.control_share) {
        return Err(DecideError::Invalid(format!(
            "`control_share` must lie in [0, 1), got {}",
            options.control_share
        )));
    }
    let users = model.user_ids().len();
    let query = Options {
        exclude: &options.exclude,
        known: options.known,
        explain: 0,
    };
    // Every eligible customer, to count them; only the budget's are kept.
    let mut ranked = model.audience_for(item, users, &query)?;
    let eligible = ranked.len();
    ranked.truncate(options.budget);
    let control_size = (options.control_share * ranked.len() as f64).round() as usize;
    let mut arms = vec![Arm::Target; ranked.len()];
    for k in Rng::new(options.seed).sample(ranked.len(), control_size) {
        arms[k] = Arm::Control;
    }
    let members = ranked
        .into_iter()
        .zip(arms)
        .enumerate()
        .map(|(k, (r, arm))| {
            let because = if options.explain > 0 {
                model
                    .explain(&r.id, std::slice::from_ref(item), options.explain)?
                    .remove(0)
            } else {
                Vec::new()
            };
            Ok(Member {
                customer: r.id,
                score: r.score,
                rank: k + 1,
                arm,
                because,
            })
        })
        .collect::<Result<_, DecideError>>()?;
    Ok(Audience {
        item: item.clone(),
        members,
        eligible,
    })
}
