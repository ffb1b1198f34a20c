//! Cleaning before the split: implicit threshold, de-duplication, k-core filtering.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::{DataError, Interactions, Result};

/// Preprocessing options (the `[preprocess]` table of a config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Preprocess {
    /// Keep only interactions rated at least this much (implicit feedback from ratings).
    /// Needs a rating column.
    pub implicit_threshold: Option<f32>,
    /// Keep one interaction per (user, item) pair: the latest one, with the summed weights of
    /// all of them.
    pub dedup: bool,
    /// k-core: repeatedly drop users with fewer interactions than this…
    pub min_user_interactions: usize,
    /// …and items with fewer than this, until both hold.
    pub min_item_interactions: usize,
    /// After the split, leave out of the held-out users' items (validation, test, and under
    /// the held-out-users split their fold-in items) every item no training user has: a model
    /// cannot score what it never saw, as Liang et al.'s preprocessing for Mult-VAE does.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub drop_unseen_test_items: bool,
}

impl Default for Preprocess {
    fn default() -> Self {
        Self {
            implicit_threshold: None,
            dedup: true,
            min_user_interactions: 0,
            min_item_interactions: 0,
            drop_unseen_test_items: false,
        }
    }
}

/// What preprocessing removed, for the log.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PreprocessStats {
    /// Interactions read.
    pub read: usize,
    /// Removed by the implicit threshold.
    pub below_threshold: usize,
    /// Removed as duplicates.
    pub duplicates: usize,
    /// Removed by k-core filtering.
    pub k_core: usize,
    /// Left.
    pub kept: usize,
    /// Held-out interactions with items no training user has, left out after the split
    /// (`drop_unseen_test_items`).
    #[serde(skip_serializing_if = "is_zero")]
    pub unseen_held_out: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Preprocess {
    /// Applies the options in order: threshold, de-duplication, k-core.
    pub fn apply(&self, data: &mut Interactions) -> Result<PreprocessStats> {
        self.apply_keeping_dropped(data).map(|(stats, _)| stats)
    }

    /// [`Preprocess::apply`], also returning the interactions the threshold and k-core
    /// filtering removed: pairs the user had, which a model must not recommend to them (see
    /// [`crate::Dataset::known`]). Duplicates are not returned: the copy kept is the latest of
    /// its pair among those left by the threshold, so every removed copy is older than either
    /// it or one the threshold removed.
    pub fn apply_keeping_dropped(
        &self,
        data: &mut Interactions,
    ) -> Result<(PreprocessStats, Interactions)> {
        let mut dropped = data.empty_like();
        let mut stats = PreprocessStats {
            read: data.len(),
            ..Default::default()
        };
        if let Some(ratings) = &data.ratings
            && let Some(i) = ratings.iter().position(|r| !r.is_finite())
        {
            // The readers refuse these with the file and line; data built in code can still
            // hold them, and a NaN compares false with every threshold.
            return Err(DataError::Invalid(format!(
                "interaction {} (user {}, item {}) has rating {}: ratings must be finite numbers",
                i + 1,
                data.users[i],
                data.items[i],
                ratings[i]
            )));
        }
        crate::weights::check_weights(data)?;
        if let Some(threshold) = self.implicit_threshold {
            if !threshold.is_finite() {
                return Err(DataError::Invalid(format!(
                    "preprocess.implicit_threshold is {threshold}: it must be a finite number"
                )));
            }
            let Some(ratings) = &data.ratings else {
                return Err(DataError::Invalid(
                    "preprocess.implicit_threshold needs a rating column, and the data has none"
                        .into(),
                ));
            };
            let keep: Vec<bool> = ratings.iter().map(|&r| r >= threshold).collect();
            let below = data.split_off_indices(&keep);
            stats.below_threshold = below.len();
            dropped.append(below);
        }
        if self.dedup {
            // Walk from the latest interaction back and keep the first sighting of each pair,
            // which takes the weights of the older ones.
            let order = data.chronological_order();
            let mut kept_at: HashMap<(i64, i64), usize> = HashMap::with_capacity(data.len());
            let mut keep = vec![false; data.len()];
            for &i in order.iter().rev() {
                match kept_at.entry((data.users[i], data.items[i])) {
                    Entry::Vacant(slot) => {
                        slot.insert(i);
                        keep[i] = true;
                    }
                    Entry::Occupied(kept) => {
                        if let Some(weights) = &mut data.weights {
                            weights[*kept.get()] += weights[i];
                        }
                    }
                }
            }
            let before = data.len();
            data.retain_indices(&keep);
            stats.duplicates = before - data.len();
        }
        if self.min_user_interactions > 1 || self.min_item_interactions > 1 {
            let removed = k_core(data, self.min_user_interactions, self.min_item_interactions);
            stats.k_core = removed.len();
            dropped.append(removed);
        }
        stats.kept = data.len();
        Ok((stats, dropped))
    }
}

/// Drops users and items below the thresholds until a fixed point; returns what it dropped.
fn k_core(data: &mut Interactions, min_user: usize, min_item: usize) -> Interactions {
    let mut removed = data.empty_like();
    loop {
        let mut user_count: HashMap<i64, usize> = HashMap::new();
        let mut item_count: HashMap<i64, usize> = HashMap::new();
        for (&u, &i) in data.users.iter().zip(&data.items) {
            *user_count.entry(u).or_default() += 1;
            *item_count.entry(i).or_default() += 1;
        }
        let keep: Vec<bool> = data
            .users
            .iter()
            .zip(&data.items)
            .map(|(u, i)| user_count[u] >= min_user && item_count[i] >= min_item)
            .collect();
        if keep.iter().all(|k| *k) {
            return removed;
        }
        removed.append(data.split_off_indices(&keep));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Interactions {
        Interactions {
            users: vec![1, 1, 1, 2, 2, 3, 1],
            items: vec![10, 11, 12, 10, 11, 10, 10],
            ratings: Some(vec![5.0, 3.0, 4.0, 4.0, 1.0, 5.0, 2.0]),
            weights: None,
            timestamps: Some(vec![1, 2, 3, 1, 2, 1, 9]),
            ..Default::default()
        }
    }

    #[test]
    fn dedup_keeps_latest() {
        let mut d = sample();
        let s = Preprocess::default().apply(&mut d).unwrap();
        assert_eq!(s.duplicates, 1);
        // User 1's (1, 10) at t=1 is dropped, the t=9 copy (rating 2) stays.
        assert_eq!(d.users, vec![1, 1, 2, 2, 3, 1]);
        assert_eq!(d.ratings.unwrap(), vec![3.0, 4.0, 4.0, 1.0, 5.0, 2.0]);
    }

    #[test]
    fn threshold_then_k_core() {
        let mut d = sample();
        let p = Preprocess {
            implicit_threshold: Some(4.0),
            dedup: true,
            min_user_interactions: 2,
            min_item_interactions: 2,
            drop_unseen_test_items: false,
        };
        let s = p.apply(&mut d).unwrap();
        // Ratings >= 4: (1,10,t1) (1,12) (2,10) (3,10). Users with 2+: only user 1, whose items
        // 10 and 12 then have one interaction each, so everything goes.
        assert_eq!(s.below_threshold, 3);
        assert_eq!(d.len(), 0);
    }

    #[test]
    fn nan_rating_under_a_threshold_is_an_error_not_a_drop() {
        let mut d = sample();
        d.ratings.as_mut().unwrap()[4] = f32::NAN;
        let p = Preprocess {
            implicit_threshold: Some(4.0),
            ..Default::default()
        };
        let err = p.apply(&mut d).unwrap_err().to_string();
        assert!(
            err.contains("interaction 5 (user 2, item 11) has rating NaN"),
            "{err}"
        );
        assert_eq!(d.len(), 7, "nothing dropped");
        let mut d = sample();
        let nan_threshold = Preprocess {
            implicit_threshold: Some(f32::NAN),
            ..Default::default()
        };
        let err = nan_threshold.apply(&mut d).unwrap_err().to_string();
        assert!(err.contains("implicit_threshold is NaN"), "{err}");
    }

    #[test]
    fn threshold_without_ratings_is_an_error() {
        let mut d = sample();
        d.ratings = None;
        let p = Preprocess {
            implicit_threshold: Some(4.0),
            ..Default::default()
        };
        assert!(
            p.apply(&mut d)
                .unwrap_err()
                .to_string()
                .contains("rating column")
        );
    }
}
