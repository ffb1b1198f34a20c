//! A split data set with dense ids: what training and evaluation consume.

use serde::{Deserialize, Serialize};

use crate::IdMap;

/// Interactions split into train, validation and test, per user, with dense internal ids.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// External ↔ internal user ids.
    pub user_ids: IdMap,
    /// External ↔ internal item ids.
    pub item_ids: IdMap,
    /// Each user's training items, in chronological order.
    pub train: Vec<Vec<u32>>,
    /// Each user's validation (held-out) items; may be empty.
    pub valid: Vec<Vec<u32>>,
    /// Each user's test (held-out) items; may be empty.
    pub test: Vec<Vec<u32>>,
    /// Fixed negatives for each user's test items (the NCF `.test.negative` file), when given.
    pub test_negatives: Option<Vec<Vec<u32>>>,
    /// Under the held-out-users split ([`crate::Split::HeldOutUsers`]), `true` for each
    /// validation or test user: their `train` items are the fold-in part, which a model is
    /// given at evaluation time, and user-based models (the autoencoders) do not train on
    /// them. `None` for splits where every user trains.
    pub held_out_users: Option<Vec<bool>>,
    /// The ratings of `train`, `valid` and `test`, entry for entry, when the source has
    /// ratings (explicit-feedback models train and are evaluated on these).
    pub ratings: Option<SplitRatings>,
}

/// Ratings aligned with a [`Dataset`]'s item lists: `train[u][j]` is the rating of item
/// `dataset.train[u][j]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitRatings {
    /// Ratings of the training items.
    pub train: Vec<Vec<f32>>,
    /// Ratings of the validation items.
    pub valid: Vec<Vec<f32>>,
    /// Ratings of the test items.
    pub test: Vec<Vec<f32>>,
}

/// Sizes of a data set, for `ember data stats` and the run log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetStats {
    /// Users.
    pub users: usize,
    /// Items.
    pub items: usize,
    /// Training interactions.
    pub train: usize,
    /// Validation interactions.
    pub valid: usize,
    /// Test interactions.
    pub test: usize,
    /// Share of the user × item matrix that holds an interaction.
    pub density: f64,
}

impl Dataset {
    /// Number of users.
    pub fn num_users(&self) -> usize {
        self.user_ids.len()
    }

    /// Number of items.
    pub fn num_items(&self) -> usize {
        self.item_ids.len()
    }

    /// Sizes of the splits.
    pub fn stats(&self) -> DatasetStats {
        let count = |v: &Vec<Vec<u32>>| v.iter().map(Vec::len).sum::<usize>();
        let (train, valid, test) = (count(&self.train), count(&self.valid), count(&self.test));
        let cells = (self.num_users() as f64 * self.num_items() as f64).max(1.0);
        DatasetStats {
            users: self.num_users(),
            items: self.num_items(),
            train,
            valid,
            test,
            density: (train + valid + test) as f64 / cells,
        }
    }

    /// Each user's training items, sorted, for membership tests.
    pub fn train_sets(&self) -> Vec<Vec<u32>> {
        sorted_sets(self.train.iter().map(|v| v.as_slice()))
    }

    /// Each user's training and validation items, sorted.
    pub fn train_valid_sets(&self) -> Vec<Vec<u32>> {
        self.user_sets(&[&self.train, &self.valid])
    }

    /// Each user's items in every split, sorted: what sampled test negatives must avoid.
    pub fn known_sets(&self) -> Vec<Vec<u32>> {
        self.user_sets(&[&self.train, &self.valid, &self.test])
    }

    fn user_sets(&self, splits: &[&Vec<Vec<u32>>]) -> Vec<Vec<u32>> {
        (0..self.num_users())
            .map(|u| {
                let mut all: Vec<u32> = splits.iter().flat_map(|s| s[u].iter().copied()).collect();
                all.sort_unstable();
                all.dedup();
                all
            })
            .collect()
    }

    /// The same data with each user's validation items appended to their training items and
    /// no validation split: for the final fit once hyper-parameters are chosen.
    pub fn with_validation_in_training(&self) -> Dataset {
        let mut merged = self.clone();
        for (train, valid) in merged.train.iter_mut().zip(merged.valid.iter_mut()) {
            train.append(valid);
        }
        if let Some(ratings) = &mut merged.ratings {
            for (train, valid) in ratings.train.iter_mut().zip(ratings.valid.iter_mut()) {
                train.append(valid);
            }
        }
        merged
    }

    /// Users whose rows train user-based models (every user, or the training users of the
    /// held-out-users split).
    pub fn training_users(&self) -> Vec<u32> {
        (0..self.num_users() as u32)
            .filter(|&u| {
                self.held_out_users
                    .as_ref()
                    .is_none_or(|held| !held[u as usize])
            })
            .collect()
    }

    /// Training interactions per item.
    pub fn item_popularity(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.num_items()];
        for items in &self.train {
            for &i in items {
                counts[i as usize] += 1;
            }
        }
        counts
    }
}

/// Sorts and de-duplicates each list.
pub fn sorted_sets<'a>(lists: impl Iterator<Item = &'a [u32]>) -> Vec<Vec<u32>> {
    lists
        .map(|l| {
            let mut s = l.to_vec();
            s.sort_unstable();
            s.dedup();
            s
        })
        .collect()
}
