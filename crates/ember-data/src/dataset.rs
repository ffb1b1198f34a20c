//! A split data set with dense ids: what training and evaluation consume.

use serde::{Deserialize, Serialize};

use crate::{FixedTest, IdMap, Interactions, TimeSplit, TimeSplitStats, TimeUnit};

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
    /// The weights of `train` and `valid`, entry for entry (each pair's summed weight), when
    /// the run weights interactions ([`crate::Weights`]).
    pub weights: Option<SplitWeights>,
    /// Each user's known items, sorted and distinct: every item the source holds an
    /// interaction of the user with, whatever the implicit threshold, de-duplication or k-core
    /// filtering kept for training (items and users that k-core removed entirely have no
    /// internal id, and are not here). What the user already has: exports leave these out of
    /// recommendations, and evaluation masks them (see [`Dataset::masked_for_validation`]).
    /// Always holds `train`, `valid` and `test`. One `u32` per distinct pair.
    pub known: Vec<Vec<u32>>,
    /// The day (days since 1970-01-01, UTC) of the latest interaction of each pair of
    /// `known`, entry for entry, when the source's timestamps are points in time
    /// ([`crate::Loaded::time_unit`]). One `i32` per distinct pair.
    pub known_days: Option<Vec<Vec<i32>>>,
    /// Under the time split ([`crate::Split::Time`]), its bounds, what it left out, and what
    /// each held-out part masks; `None` for the other splits.
    pub time_split: Option<TimeSplit>,
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

/// Keeps the entries of `values` whose flag in `keep` is set.
fn retain_by<T>(values: &mut Vec<T>, keep: &[bool]) {
    let mut flags = keep.iter();
    values.retain(|_| *flags.next().expect("one flag per value"));
}

impl SplitRatings {
    /// User `u`'s training, validation and test ratings.
    fn split_mut(&mut self, u: usize) -> (&mut Vec<f32>, &mut Vec<f32>, &mut Vec<f32>) {
        (&mut self.train[u], &mut self.valid[u], &mut self.test[u])
    }
}

impl SplitWeights {
    /// User `u`'s training and validation weights.
    fn split_mut(&mut self, u: usize) -> (&mut Vec<f32>, &mut Vec<f32>) {
        (&mut self.train[u], &mut self.valid[u])
    }
}

/// Weights aligned with a [`Dataset`]'s training and validation item lists: `train[u][j]` is
/// the weight of item `dataset.train[u][j]`. Test items need none: they are only ranked.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitWeights {
    /// Weights of the training items.
    pub train: Vec<Vec<f32>>,
    /// Weights of the validation items.
    pub valid: Vec<Vec<f32>>,
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
    /// Under the time split: the users it scores and the new users and items it left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_split: Option<TimeSplitStats>,
}

impl Dataset {
    /// Leaves out of the held-out users' items every item no training user has (see
    /// [`crate::Preprocess::drop_unseen_test_items`]): validation and test items, and under
    /// the held-out-users split the validation and test users' fold-in items too, with their
    /// ratings and weights. Returns how many interactions it left out.
    pub fn drop_unseen_held_out_items(&mut self) -> usize {
        let held_out = self.held_out_users.clone();
        let is_held_out = |u: usize| held_out.as_ref().is_some_and(|h| h[u]);
        let mut seen = vec![false; self.num_items()];
        for (u, items) in self.train.iter().enumerate() {
            if !is_held_out(u) {
                items.iter().for_each(|&i| seen[i as usize] = true);
            }
        }
        let mut dropped = 0;
        for u in 0..self.train.len() {
            let mut keep_in = |items: &mut Vec<u32>, aligned: [Option<&mut Vec<f32>>; 2]| {
                let keep: Vec<bool> = items.iter().map(|&i| seen[i as usize]).collect();
                dropped += keep.iter().filter(|k| !**k).count();
                retain_by(items, &keep);
                for values in aligned.into_iter().flatten() {
                    retain_by(values, &keep);
                }
            };
            let (ratings, weights) = (self.ratings.as_mut(), self.weights.as_mut());
            let (mut r, mut w) = (
                ratings.map(|r| r.split_mut(u)),
                weights.map(|w| w.split_mut(u)),
            );
            keep_in(
                &mut self.valid[u],
                [r.as_mut().map(|r| &mut *r.1), w.as_mut().map(|w| &mut *w.1)],
            );
            keep_in(&mut self.test[u], [r.as_mut().map(|r| &mut *r.2), None]);
            if is_held_out(u) {
                keep_in(&mut self.train[u], [r.map(|r| r.0), w.map(|w| w.0)]);
            }
        }
        dropped
    }

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
            time_split: self.time_split.as_ref().map(|t| t.stats.clone()),
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

    /// Each user's items in every split, sorted (a subset of [`Dataset::known`], which also
    /// holds the pairs preprocessing removed).
    pub fn split_sets(&self) -> Vec<Vec<u32>> {
        self.user_sets(&[&self.train, &self.valid, &self.test])
    }

    /// Each user's items that validation must not rank but as held-out items, sorted: their
    /// known items but the test items that are not also training or validation items (model
    /// selection knows nothing of the test items, so they stay candidates as any unseen item).
    /// Full ranking masks these (the validation items among them stay candidates, to be
    /// found), and sampled validation negatives avoid them.
    ///
    /// Under the time split, the known items taken before the validation window: what the
    /// user did later is not yet known at its start.
    pub fn masked_for_validation(&self) -> Vec<Vec<u32>> {
        if let Some(time) = &self.time_split {
            return time.known_before_valid.clone();
        }
        (0..self.num_users())
            .map(|u| {
                let seen = |i: &u32| self.train[u].contains(i) || self.valid[u].contains(i);
                self.known[u]
                    .iter()
                    .copied()
                    .filter(|i| !self.test[u].contains(i) || seen(i))
                    .collect()
            })
            .collect()
    }

    /// Each user's items that test must not rank but as held-out items, sorted: their known
    /// items, or under the time split those taken before the cutoff (an item taken after it
    /// is what is predicted, so it stays a candidate). Full ranking masks these (the test
    /// items among them stay candidates, to be found), and sampled test negatives avoid them.
    pub fn masked_for_test(&self) -> Vec<Vec<u32>> {
        match &self.time_split {
            Some(time) => time.known_before_cutoff.clone(),
            None => self.known.clone(),
        }
    }

    /// Sets [`Dataset::known`] (and [`Dataset::known_days`]) to every (user, item) pair of
    /// `sources` and of `fixed`'s test pairs whose user and item have internal ids, with each
    /// pair's latest day when every source has timestamps and `time_unit` says what they
    /// count. `sources` must hold the interactions the splits were made of (the known items
    /// always hold every split's).
    pub fn set_known(
        &mut self,
        sources: &[&Interactions],
        fixed: Option<&FixedTest>,
        time_unit: Option<TimeUnit>,
    ) {
        let fixed_pairs = fixed.map(|f| Interactions {
            users: f.test.iter().map(|p| p.0).collect(),
            items: f.test.iter().map(|p| p.1).collect(),
            ratings: None,
            weights: None,
            timestamps: f.test_timestamps.clone(),
            // The NCF files, the one source with a fixed test, have integer keys.
            ..Default::default()
        });
        let all: Vec<&Interactions> = sources.iter().copied().chain(&fixed_pairs).collect();
        let unit = time_unit.filter(|_| all.iter().all(|s| s.timestamps.is_some()));
        let mut pairs: Vec<Vec<(u32, i32)>> = vec![Vec::new(); self.num_users()];
        for source in all {
            for (k, (user, item)) in source.users.iter().zip(&source.items).enumerate() {
                let (Some(u), Some(i)) =
                    (self.user_ids.internal(*user), self.item_ids.internal(*item))
                else {
                    continue;
                };
                let day = match (unit, &source.timestamps) {
                    (Some(unit), Some(times)) => unit.day(times[k]),
                    _ => 0,
                };
                pairs[u as usize].push((i, day));
            }
        }
        let (known, days) = latest_of_each_item(pairs);
        self.known = known;
        self.known_days = unit.map(|_| days);
        if let Some(time) = &self.time_split {
            let (valid_start, cutoff) = (time.valid_start, time.cutoff);
            let (before_valid, _) = self.known_before(sources, valid_start, unit);
            let (before_cutoff, days_before_cutoff) = self.known_before(sources, cutoff, unit);
            let time = self.time_split.as_mut().expect("checked");
            time.known_before_valid = before_valid;
            time.known_before_cutoff = before_cutoff;
            time.known_days_before_cutoff = unit.map(|_| days_before_cutoff);
        }
    }

    /// Each user's items (sorted, distinct) with an interaction in `sources` timed before
    /// `bound`, and the day of each one's latest such interaction (0 without `unit`).
    fn known_before(
        &self,
        sources: &[&Interactions],
        bound: i64,
        unit: Option<TimeUnit>,
    ) -> (Vec<Vec<u32>>, Vec<Vec<i32>>) {
        let mut before: Vec<Vec<(u32, i32)>> = vec![Vec::new(); self.num_users()];
        for source in sources {
            let Some(times) = &source.timestamps else {
                continue;
            };
            for ((user, item), &t) in source.users.iter().zip(&source.items).zip(times) {
                if let (true, Some(u), Some(i)) = (
                    t < bound,
                    self.user_ids.internal(*user),
                    self.item_ids.internal(*item),
                ) {
                    before[u as usize].push((i, unit.map_or(0, |unit| unit.day(t))));
                }
            }
        }
        latest_of_each_item(before)
    }

    /// What a user had where the model's data ends, with the day each was last had when
    /// [`Dataset::known_days`] has days: what an export carries as known items. Every known
    /// pair; under the time split only those from before the cutoff, as a backtest stands at
    /// the cutoff, and what came after it is what the backtest predicts (masking it would
    /// hide the very purchases being predicted).
    pub fn known_at_data_end(&self) -> (&[Vec<u32>], Option<&[Vec<i32>]>) {
        match &self.time_split {
            Some(time) => (
                &time.known_before_cutoff,
                time.known_days_before_cutoff.as_deref(),
            ),
            None => (&self.known, self.known_days.as_deref()),
        }
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
        if let Some(weights) = &mut merged.weights {
            for (train, valid) in weights.train.iter_mut().zip(weights.valid.iter_mut()) {
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

/// Each user's `(item, day)` pairs as sorted distinct items and, entry for entry, each one's
/// latest day.
fn latest_of_each_item(pairs: Vec<Vec<(u32, i32)>>) -> (Vec<Vec<u32>>, Vec<Vec<i32>>) {
    let mut items = Vec::with_capacity(pairs.len());
    let mut days = Vec::with_capacity(pairs.len());
    for mut row in pairs {
        // Latest day first within an item, so that dedup keeps it.
        row.sort_unstable_by_key(|&(i, day)| (i, std::cmp::Reverse(day)));
        row.dedup_by_key(|p| p.0);
        items.push(row.iter().map(|p| p.0).collect());
        days.push(row.into_iter().map(|p| p.1).collect());
    }
    (items, days)
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

#[cfg(test)]
mod tests {
    use crate::{Interactions, Preprocess, Split, TimeUnit};

    /// Users 1, 2 and 3 over items 10–13, timestamps in days. Under a threshold of 4, user 1
    /// keeps 10 (day 1), 12 (day 3) and 13 (day 7), and loses 11 (rated 2, day 2) and a later
    /// copy of 10 (rated 1, day 9); user 2 keeps 10 and 11; user 3 rated only 11, low.
    fn rated() -> Interactions {
        Interactions {
            users: vec![1, 1, 1, 1, 1, 2, 2, 3],
            items: vec![10, 11, 12, 10, 13, 10, 11, 11],
            ratings: Some(vec![5.0, 2.0, 4.0, 1.0, 5.0, 4.0, 5.0, 3.0]),
            weights: None,
            timestamps: Some(vec![1, 2, 3, 9, 7, 4, 5, 6]),
            ..Default::default()
        }
    }

    /// Preprocesses, splits leave-one-out and records the known pairs, as `prepare` does.
    fn pipeline(preprocess: &Preprocess, unit: Option<TimeUnit>) -> crate::Dataset {
        let mut data = rated();
        let (_, dropped) = preprocess.apply_keeping_dropped(&mut data).unwrap();
        let mut dataset = Split::LeaveOneOut.apply(&data, None).unwrap();
        dataset.set_known(&[&data, &dropped], None, unit);
        dataset
    }

    fn external(d: &crate::Dataset, items: &[u32]) -> Vec<i64> {
        items.iter().map(|&i| d.item_ids.external(i)).collect()
    }

    #[test]
    fn the_threshold_keeps_low_rated_pairs_known_with_their_latest_day() {
        let threshold = Preprocess {
            implicit_threshold: Some(4.0),
            ..Default::default()
        };
        let d = pipeline(&threshold, Some(TimeUnit::Days));
        // User 3 kept nothing, so has no id; items 10–13 all keep one (11 through user 2).
        assert_eq!(d.num_users(), 2);
        let (u1, u2) = (0, 1);
        assert_eq!(external(&d, &d.train[u1]), [10]);
        assert_eq!(external(&d, &d.valid[u1]), [12]);
        assert_eq!(external(&d, &d.test[u1]), [13]);
        // 11 (rated 2) is known though no split holds it; 10's latest day is the dropped
        // copy's, 9.
        assert_eq!(external(&d, &d.known[u1]), [10, 11, 12, 13]);
        let days = d.known_days.as_ref().unwrap();
        assert_eq!(days[u1], [9, 2, 3, 7]);
        assert_eq!(external(&d, &d.known[u2]), [10, 11]);
        assert_eq!(days[u2], [4, 5]);
        // Validation masks everything known but the test item (13, not seen before).
        assert_eq!(external(&d, &d.masked_for_validation()[u1]), [10, 11, 12]);
    }

    #[test]
    fn dedup_counts_a_pair_once_at_its_latest_day_and_seconds_become_days() {
        let mut data = rated();
        data.timestamps = Some(
            [1, 2, 3, 9, 7, 4, 5, 6]
                .iter()
                .map(|d| d * 86_400 + 3_600)
                .collect(),
        );
        let (_, dropped) = Preprocess::default()
            .apply_keeping_dropped(&mut data)
            .unwrap();
        assert!(dropped.is_empty(), "duplicates are not returned");
        let mut d = Split::LeaveOneOut.apply(&data, None).unwrap();
        d.set_known(&[&data, &dropped], None, Some(TimeUnit::Seconds));
        assert_eq!(external(&d, &d.known[0]), [10, 11, 12, 13]);
        assert_eq!(d.known_days.as_ref().unwrap()[0], [9, 2, 3, 7]);
        // Without a time unit (positions in a file) there are no days.
        d.set_known(&[&data, &dropped], None, None);
        assert!(d.known_days.is_none());
        assert_eq!(external(&d, &d.known[0]), [10, 11, 12, 13]);
    }

    #[test]
    fn k_core_after_the_threshold_keeps_the_low_rated_pairs_of_the_users_and_items_it_keeps() {
        // Users 1–3 each rate two of items 10–12 high and the third low; user 4 rates 10
        // high and 11 low; user 1 also rates 13 high. k-core (2 each) then removes user 4
        // (one kept interaction) and item 13 (one), which get no id.
        let mut data = Interactions {
            users: vec![1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 1],
            items: vec![10, 11, 12, 10, 12, 11, 11, 12, 10, 10, 11, 13],
            ratings: Some(vec![
                5.0, 5.0, 1.0, 5.0, 5.0, 2.0, 5.0, 5.0, 1.0, 5.0, 1.0, 5.0,
            ]),
            weights: None,
            timestamps: Some((1..=12).collect()),
            ..Default::default()
        };
        let k_core = Preprocess {
            implicit_threshold: Some(4.0),
            min_user_interactions: 2,
            min_item_interactions: 2,
            ..Default::default()
        };
        let (stats, dropped) = k_core.apply_keeping_dropped(&mut data).unwrap();
        assert_eq!((stats.below_threshold, stats.k_core, stats.kept), (4, 2, 6));
        assert_eq!(dropped.len(), 6);
        let everything = Split::Ratio {
            train: 1.0,
            valid: 0.0,
            test: 0.0,
            seed: 0,
        };
        let mut d = everything.apply(&data, None).unwrap();
        d.set_known(&[&data, &dropped], None, Some(TimeUnit::Days));
        assert_eq!((d.num_users(), d.num_items()), (3, 3));
        let days = d.known_days.as_ref().unwrap();
        for (u, trained, latest) in [
            (0, [10, 11], [1, 2, 3]),
            (1, [10, 12], [4, 6, 5]),
            (2, [11, 12], [9, 7, 8]),
        ] {
            assert_eq!(external(&d, &d.train[u]), trained, "user {}", u + 1);
            // The low-rated item is known too, with its day.
            assert_eq!(external(&d, &d.known[u]), [10, 11, 12], "user {}", u + 1);
            assert_eq!(days[u], latest, "user {}", u + 1);
        }
    }
}
