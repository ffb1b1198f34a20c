//! Train / validation / test splits.

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::time_split::{self, Instant, TimeSplit};
use crate::{
    DataError, Dataset, IdMap, Interactions, Result, SplitRatings, SplitWeights, TimeUnit,
    sorted_sets,
};

/// How interactions are split (the `[split]` table of a config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Split {
    /// Temporal leave-one-out: each user's last interaction is the test item, the second last
    /// the validation item. Users with fewer than 3 interactions only train (as SASRec's code).
    LeaveOneOut,
    /// Each user's interactions shuffled (seeded) and cut by these shares; a user with few
    /// interactions keeps at least one for training.
    Ratio {
        /// Share for training, e.g. 0.8.
        train: f64,
        /// Share for validation, e.g. 0.1.
        valid: f64,
        /// Share for testing, e.g. 0.1.
        test: f64,
        /// Shuffling seed.
        #[serde(default)]
        seed: u64,
    },
    /// The test items (and negatives) come from the source's own files (the NCF format);
    /// validation is each user's latest training interaction, held out from training, as in
    /// the NCF paper.
    Fixed,
    /// Strong generalisation (Liang et al. 2018, the Mult-VAE paper): users are shuffled
    /// (seeded); `valid_users` of them become validation users, `test_users` test users, the
    /// rest training users. Each held-out user with at least 5 interactions keeps a random
    /// `fold_in` share of them as the model's input (their `train` items, see
    /// [`Dataset::held_out_users`]) and has the rest held out to score; one with fewer is only
    /// folded in (and skipped by evaluation).
    HeldOutUsers {
        /// Number of validation users.
        valid_users: usize,
        /// Number of test users.
        test_users: usize,
        /// Share of a held-out user's interactions given as input (default 0.8).
        #[serde(default = "default_fold_in")]
        fold_in: f64,
        /// Seed of the user shuffle and of each user's fold-in choice.
        #[serde(default)]
        seed: u64,
    },
    /// A backtest: training takes the interactions before the validation window, validation
    /// the window, test those on or after `cutoff`. Users and items with no training
    /// interaction get no id; their held-out interactions are counted
    /// ([`crate::TimeSplitStats`]) and not scored.
    Time {
        /// `YYYY-MM-DD` or an RFC 3339 date and time; UTC unless it names an offset.
        cutoff: String,
        /// The validation window: this many days before `cutoff`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        valid_days: Option<u32>,
        /// The validation window: from this date (as `cutoff`) to `cutoff`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        valid_cutoff: Option<String>,
    },
}

fn default_fold_in() -> f64 {
    0.8
}

/// Held-out users with fewer interactions than this are folded in whole (as in Liang et al.'s
/// preprocessing).
pub const MIN_HELD_OUT_USER_ITEMS: usize = 5;

impl Default for Split {
    fn default() -> Self {
        Split::LeaveOneOut
    }
}

/// Test data given by the source itself, with external ids.
#[derive(Debug, Clone, Default)]
pub struct FixedTest {
    /// Held-out (user, item) pairs.
    pub test: Vec<(i64, i64)>,
    /// The timestamp of each held-out pair, when the file has them.
    pub test_timestamps: Option<Vec<i64>>,
    /// Per test user, the fixed negatives to rank the held-out item against.
    pub negatives: Option<Vec<(i64, Vec<i64>)>>,
}

impl Split {
    /// Checks the shares of a ratio split.
    pub fn validate(&self) -> Result<()> {
        if let Split::Ratio {
            train, valid, test, ..
        } = *self
        {
            let shares = [train, valid, test];
            if shares.iter().any(|s| !(0.0..=1.0).contains(s))
                || train <= 0.0
                || (train + valid + test - 1.0).abs() > 1e-6
            {
                return Err(DataError::Invalid(format!(
                    "split ratio {train}:{valid}:{test} is invalid: shares must lie in [0, 1], train > 0, and sum to 1"
                )));
            }
        }
        if let Split::HeldOutUsers { fold_in, .. } = *self
            && !(fold_in > 0.0 && fold_in < 1.0)
        {
            return Err(DataError::Invalid(format!(
                "split held_out_users: fold_in {fold_in} must lie strictly between 0 and 1"
            )));
        }
        self.time_window()?;
        Ok(())
    }

    /// The validation window's start and the cutoff of a time split, parsed and checked
    /// against each other; `None` for the other splits.
    fn time_window(&self) -> Result<Option<(Instant, Instant)>> {
        let Split::Time {
            cutoff,
            valid_days,
            valid_cutoff,
        } = self
        else {
            return Ok(None);
        };
        let parse = |key: &str, text: &str| {
            time_split::parse_instant(text).ok_or_else(|| {
                DataError::Invalid(format!(
                    "split time: {key} {text:?} is not a date (YYYY-MM-DD) or a date and time \
                     (RFC 3339, e.g. 1998-03-01T00:00:00+01:00; UTC when it names no offset)"
                ))
            })
        };
        let end = parse("cutoff", cutoff)?;
        let start = match (valid_days, valid_cutoff) {
            (Some(0), None) => {
                return Err(DataError::Invalid(
                    "split time: valid_days must be at least 1".into(),
                ));
            }
            (Some(days), None) => end - i128::from(*days) * 86_400 * 1_000_000_000,
            (None, Some(text)) => parse("valid_cutoff", text)?,
            _ => {
                return Err(DataError::Invalid(
                    "split time: give exactly one of valid_days and valid_cutoff (where the \
                     validation window before cutoff starts)"
                        .into(),
                ));
            }
        };
        if start >= end {
            return Err(DataError::Invalid(format!(
                "split time: valid_cutoff {} must come before cutoff {cutoff}",
                valid_cutoff.as_deref().unwrap_or_default()
            )));
        }
        Ok(Some((start, end)))
    }

    /// Splits `data`, mapping ids to dense internal ids. `fixed` must be given for (and only
    /// for) [`Split::Fixed`]. A time split needs [`Split::apply_with_time_unit`].
    pub fn apply(&self, data: &Interactions, fixed: Option<&FixedTest>) -> Result<Dataset> {
        self.apply_with_time_unit(data, fixed, None)
    }

    /// [`Split::apply`] knowing what the timestamps count (`None` when they are positions,
    /// or absent), which a time split needs to place its dates.
    pub fn apply_with_time_unit(
        &self,
        data: &Interactions,
        fixed: Option<&FixedTest>,
        time_unit: Option<TimeUnit>,
    ) -> Result<Dataset> {
        self.validate()?;
        if data.is_empty() {
            return Err(DataError::Invalid("no interactions left to split".into()));
        }
        if let Some(window) = self.time_window()? {
            if fixed.is_some() {
                return Err(DataError::Invalid(
                    "the `ncf` format brings its own test split: use `[split] kind = \"fixed\"`"
                        .into(),
                ));
            }
            return self.split_by_time(data, time_unit, window);
        }
        // The NCF files (the only source with a fixed test) have integer keys.
        let user_ids = match fixed {
            Some(f) => IdMap::from_ids(data.users.iter().chain(f.test.iter().map(|(u, _)| u))),
            None => IdMap::from_codes(&data.users, &data.user_keys),
        };
        let item_ids = match fixed {
            Some(f) => {
                let negatives = f.negatives.iter().flatten().flat_map(|(_, n)| n.iter());
                IdMap::from_ids(
                    data.items
                        .iter()
                        .chain(f.test.iter().map(|(_, i)| i))
                        .chain(negatives),
                )
            }
            None => IdMap::from_codes(&data.items, &data.item_keys),
        };
        let n_users = user_ids.len();
        // Each user's items in chronological order.
        let mut history: Vec<Vec<u32>> = vec![Vec::new(); n_users];
        for i in data.chronological_order() {
            let u = user_ids.internal(data.users[i]).expect("user in map");
            history[u as usize].push(item_ids.internal(data.items[i]).expect("item in map"));
        }
        let largest = history.iter().map(Vec::len).max().unwrap_or(0);
        let mut train = vec![Vec::new(); n_users];
        let mut valid = vec![Vec::new(); n_users];
        let mut test = vec![Vec::new(); n_users];
        let mut test_negatives = None;
        let mut held_out_users = None;
        match (self, fixed) {
            (Split::LeaveOneOut, None) => {
                for (u, mut items) in history.into_iter().enumerate() {
                    if items.len() >= 3 {
                        test[u].push(items.pop().expect("len >= 3"));
                        valid[u].push(items.pop().expect("len >= 2"));
                    }
                    train[u] = items;
                }
            }
            (
                Split::Ratio {
                    train: tr,
                    valid: va,
                    seed,
                    ..
                },
                None,
            ) => {
                let mut rng = SmallRng::seed_from_u64(*seed);
                for (u, items) in history.into_iter().enumerate() {
                    let mut order: Vec<usize> = (0..items.len()).collect();
                    order.shuffle(&mut rng);
                    let n = items.len() as f64;
                    let n_train = ((n * tr).round() as usize).max(1).min(items.len());
                    let n_valid = ((n * va).round() as usize).min(items.len() - n_train);
                    let mut part = vec![0u8; items.len()];
                    for &i in &order[n_train..n_train + n_valid] {
                        part[i] = 1;
                    }
                    for &i in &order[n_train + n_valid..] {
                        part[i] = 2;
                    }
                    // Keep chronological order inside each part.
                    for (i, item) in items.into_iter().enumerate() {
                        [&mut train, &mut valid, &mut test][part[i] as usize][u].push(item);
                    }
                }
            }
            (Split::Fixed, Some(fixed)) => {
                for (u, mut items) in history.into_iter().enumerate() {
                    if items.len() >= 2 {
                        valid[u].push(items.pop().expect("len >= 2"));
                    }
                    train[u] = items;
                }
                for &(user, item) in &fixed.test {
                    let u = user_ids.internal(user).expect("user in map") as usize;
                    test[u].push(item_ids.internal(item).expect("item in map"));
                }
                if let Some(negatives) = &fixed.negatives {
                    let mut per_user: Vec<Option<Vec<u32>>> = vec![None; n_users];
                    for (user, items) in negatives {
                        let u = user_ids.internal(*user).ok_or_else(|| {
                            DataError::Invalid(format!(
                                "the negatives file names user {user}, who has no training or test interaction"
                            ))
                        })? as usize;
                        if per_user[u].is_some() {
                            return Err(DataError::Invalid(format!(
                                "the negatives file lists user {user} twice"
                            )));
                        }
                        per_user[u] = Some(
                            items
                                .iter()
                                .map(|i| item_ids.internal(*i).expect("item in map"))
                                .collect(),
                        );
                    }
                    for (u, held_out) in test.iter().enumerate() {
                        if !held_out.is_empty() && per_user[u].as_ref().is_none_or(|n| n.is_empty())
                        {
                            return Err(DataError::Invalid(format!(
                                "test user {} has no negatives in the negatives file: every test user needs a line",
                                user_ids.external(u as u32)
                            )));
                        }
                    }
                    let per_user: Vec<Vec<u32>> = per_user
                        .into_iter()
                        .map(Option::unwrap_or_default)
                        .collect();
                    test_negatives = Some(per_user);
                }
            }
            (
                Split::HeldOutUsers {
                    valid_users,
                    test_users,
                    fold_in,
                    seed,
                },
                None,
            ) => {
                let (n_valid, n_test) = (*valid_users, *test_users);
                if n_valid + n_test >= n_users || n_test == 0 {
                    return Err(DataError::Invalid(format!(
                        "split held_out_users: {n_valid} validation + {n_test} test users must be fewer than the {n_users} users, with at least one test user"
                    )));
                }
                let mut rng = SmallRng::seed_from_u64(*seed);
                let mut users: Vec<usize> = (0..n_users).collect();
                users.shuffle(&mut rng);
                let mut held_out = vec![false; n_users];
                for (rank, &u) in users.iter().enumerate() {
                    let items = std::mem::take(&mut history[u]);
                    let target = match rank {
                        r if r < n_valid => &mut valid[u],
                        r if r < n_valid + n_test => &mut test[u],
                        _ => {
                            train[u] = items;
                            continue;
                        }
                    };
                    held_out[u] = true;
                    // An item repeated in the history must not land on both sides.
                    let mut seen = std::collections::HashSet::new();
                    let items: Vec<u32> = items.into_iter().filter(|i| seen.insert(*i)).collect();
                    let n = items.len();
                    // int((1 - fold_in) · n) as in the paper's code; the epsilon keeps
                    // 0.19999… · 10 from rounding down to 1.
                    let n_held = if n >= MIN_HELD_OUT_USER_ITEMS {
                        (((1.0 - fold_in) * n as f64 + 1e-9) as usize).max(1)
                    } else {
                        0
                    };
                    let mut order: Vec<usize> = (0..n).collect();
                    order.shuffle(&mut rng);
                    let mut scored = vec![false; n];
                    for &i in &order[..n_held] {
                        scored[i] = true;
                    }
                    // Both parts keep chronological order.
                    for (i, item) in items.into_iter().enumerate() {
                        if scored[i] {
                            target.push(item);
                        } else {
                            train[u].push(item);
                        }
                    }
                }
                held_out_users = Some(held_out);
            }
            (Split::Time { .. }, None) => unreachable!("a time split returned above"),
            (Split::Fixed, None) => {
                return Err(DataError::Invalid(
                    "split `fixed` needs a source with its own test files (format `ncf`)".into(),
                ));
            }
            (_, Some(_)) => {
                return Err(DataError::Invalid(
                    "the `ncf` format brings its own test split: use `[split] kind = \"fixed\"`"
                        .into(),
                ));
            }
        }
        self.check_held_out(&valid, &test, largest)?;
        Ok(assemble(
            data,
            (user_ids, item_ids),
            [train, valid, test],
            (test_negatives, held_out_users),
            None,
        ))
    }

    /// The time split of `data` at `window` (validation start, cutoff).
    fn split_by_time(
        &self,
        data: &Interactions,
        time_unit: Option<TimeUnit>,
        (start, end): (Instant, Instant),
    ) -> Result<Dataset> {
        let Split::Time { cutoff, .. } = self else {
            unreachable!("split_by_time is called for time splits")
        };
        let Some(times) = &data.timestamps else {
            return Err(DataError::Invalid(
                "split time needs each interaction's date, and this source has no timestamps \
                 (name the timestamp column in [data])"
                    .into(),
            ));
        };
        let Some(unit) = time_unit else {
            return Err(DataError::Invalid(
                "split time needs each interaction's date, and this source's timestamps are \
                 positions in a sequence, not dates (formats sasrec and sequences, synthetic \
                 data): use leave_one_out"
                    .into(),
            ));
        };
        let (first, last) = times
            .iter()
            .fold((i64::MAX, i64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
        let span = (
            time_split::from_unit(first, unit),
            time_split::from_unit(last, unit),
        );
        let (valid_start, cutoff_t) = (
            time_split::to_unit(start, unit),
            time_split::to_unit(end, unit),
        );
        time_split::check_span(
            cutoff,
            (first, last),
            (valid_start, cutoff_t),
            (span, start),
        )?;
        let texts = (time_split::datetime(start), time_split::datetime(end));
        let parts = time_split::split_at(data, times, (valid_start, cutoff_t), texts);
        time_split::check_window(&parts, span, (start, end))?;
        let time_split::TimeParts {
            user_ids,
            item_ids,
            train,
            valid,
            test,
            split,
        } = parts;
        Ok(assemble(
            data,
            (user_ids, item_ids),
            [train, valid, test],
            (None, None),
            Some(split),
        ))
    }
}

/// The [`Dataset`] of split parts: each kept pair's rating looked up, the known items set to
/// the parts' (the caller adds what preprocessing removed, [`Dataset::set_known`]).
fn assemble(
    data: &Interactions,
    (user_ids, item_ids): (IdMap, IdMap),
    [train, valid, test]: [Vec<Vec<u32>>; 3],
    (test_negatives, held_out_users): (Option<Vec<Vec<u32>>>, Option<Vec<bool>>),
    time_split: Option<TimeSplit>,
) -> Dataset {
    // Each kept (user, item)'s rating (the latest, when repeated), looked up per split. A pair
    // without ids (a time split's new user or item) is in no split.
    let ratings = data.ratings.as_ref().and_then(|values| {
        let mut rating = std::collections::HashMap::new();
        for i in data.chronological_order() {
            let (Some(u), Some(item)) = (
                user_ids.internal(data.users[i]),
                item_ids.internal(data.items[i]),
            ) else {
                continue;
            };
            rating.insert((u, item), values[i]);
        }
        let aligned = |split: &Vec<Vec<u32>>| -> Option<Vec<Vec<f32>>> {
            split
                .iter()
                .enumerate()
                .map(|(u, items)| {
                    items
                        .iter()
                        .map(|&i| rating.get(&(u as u32, i)).copied())
                        .collect()
                })
                .collect()
        };
        // The fixed split's test items come from their own file, without ratings.
        Some(SplitRatings {
            train: aligned(&train)?,
            valid: aligned(&valid)?,
            test: aligned(&test)?,
        })
    });
    let weights = split_weights(data, (&user_ids, &item_ids), [&train, &valid]);
    let mut dataset = Dataset {
        user_ids,
        item_ids,
        train,
        valid,
        test,
        test_negatives,
        held_out_users,
        ratings,
        weights,
        known: Vec::new(),
        known_days: None,
        time_split,
    };
    dataset.known = dataset.split_sets();
    if dataset.time_split.is_some() {
        // Until set_known adds what preprocessing removed: the parts before each bound.
        let before_valid = sorted_sets(dataset.train.iter().map(Vec::as_slice));
        let before_cutoff = dataset.train_valid_sets();
        let time = dataset.time_split.as_mut().expect("checked");
        time.known_before_valid = before_valid;
        time.known_before_cutoff = before_cutoff;
    }
    dataset
}

/// The weights of the `train` and `valid` parts, each pair's summed over its interactions in
/// `data` (one, once de-duplicated), when `data` has weights.
fn split_weights(
    data: &Interactions,
    (user_ids, item_ids): (&IdMap, &IdMap),
    parts: [&Vec<Vec<u32>>; 2],
) -> Option<SplitWeights> {
    let values = data.weights.as_ref()?;
    let mut total: std::collections::HashMap<(u32, u32), f32> = std::collections::HashMap::new();
    for (k, &w) in values.iter().enumerate() {
        if let (Some(u), Some(i)) = (
            user_ids.internal(data.users[k]),
            item_ids.internal(data.items[k]),
        ) {
            *total.entry((u, i)).or_default() += w;
        }
    }
    let [train, valid] = parts.map(|part| {
        part.iter()
            .enumerate()
            .map(|(u, items)| {
                let weight = |&i: &u32| total[&(u as u32, i)]; // every part's pair is in `data`
                items.iter().map(weight).collect()
            })
            .collect()
    });
    Some(SplitWeights { train, valid })
}

impl Split {
    /// Refuses a split that holds out nothing where it should hold out something (users too
    /// small for it): training would pick epochs on no validation data, and report no test
    /// metrics, without saying why. `largest` is the most interactions any user has.
    fn check_held_out(&self, valid: &[Vec<u32>], test: &[Vec<u32>], largest: usize) -> Result<()> {
        let none = |part: &[Vec<u32>]| part.iter().all(Vec::is_empty);
        let problem = match *self {
            Split::LeaveOneOut if none(test) => format!(
                "split leave_one_out holds nothing out: a user needs at least 3 interactions (to \
                 train on, validate and test), and the most any user has here is {largest}; users \
                 with fewer only train"
            ),
            Split::Ratio {
                train: tr,
                valid: va,
                test: te,
                ..
            } if (te > 0.0 && none(test)) || (va > 0.0 && none(valid)) => {
                let which = if te > 0.0 && none(test) {
                    "test"
                } else {
                    "validation"
                };
                format!(
                    "split ratio {tr}:{va}:{te} holds out no {which} interaction: its share rounds \
                     to 0 for every user (the most any user has here is {largest} interactions); \
                     use leave_one_out, or larger shares"
                )
            }
            Split::HeldOutUsers {
                valid_users,
                test_users,
                ..
            } if none(test) || (valid_users > 0 && none(valid)) => {
                let (which, users) = if none(test) {
                    ("test", test_users)
                } else {
                    ("validation", valid_users)
                };
                format!(
                    "split held_out_users holds out no {which} interaction: none of the {users} \
                     {which} users has the {MIN_HELD_OUT_USER_ITEMS} interactions it takes to hold \
                     some out (the most any user has here is {largest})"
                )
            }
            Split::Fixed if none(valid) => format!(
                "split fixed has no validation item: a user needs at least 2 training \
                 interactions to hold the latest out, and the most any user has here is {largest}"
            ),
            _ => return Ok(()),
        };
        Err(DataError::Invalid(problem))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Interactions {
        // User 7: items 1,2,3,4 at times 4,1,3,2 -> chronological 2,4,3,1. User 9: two items.
        Interactions {
            users: vec![7, 7, 7, 7, 9, 9],
            items: vec![1, 2, 3, 4, 1, 5],
            ratings: None,
            weights: None,
            timestamps: Some(vec![4, 1, 3, 2, 1, 2]),
            ..Default::default()
        }
    }

    /// Every user interacting with every item, in order.
    fn grid(users: i64, items: i64) -> Interactions {
        let mut data = Interactions::default();
        for u in 0..users {
            for i in 0..items {
                data.users.push(u);
                data.items.push(i);
            }
        }
        data
    }

    #[test]
    fn leave_one_out_is_temporal() {
        let d = Split::LeaveOneOut.apply(&data(), None).unwrap();
        // Items 1..5 map to 0..4; user 7 -> 0, user 9 -> 1.
        assert_eq!(d.test[0], vec![0]); // item 1 is the latest (t=4)
        assert_eq!(d.valid[0], vec![2]); // item 3 (t=3)
        assert_eq!(d.train[0], vec![1, 3]); // items 2, 4 in time order
        // Fewer than 3 interactions: training only.
        assert_eq!(d.train[1], vec![0, 4]);
        assert!(d.test[1].is_empty() && d.valid[1].is_empty());
    }

    #[test]
    fn ratio_split_is_seeded_and_complete() {
        let big = grid(20, 10);
        let split = Split::Ratio {
            train: 0.8,
            valid: 0.1,
            test: 0.1,
            seed: 3,
        };
        let a = split.apply(&big, None).unwrap();
        let b = split.apply(&big, None).unwrap();
        assert_eq!(a.test, b.test);
        let s = a.stats();
        assert_eq!((s.train, s.valid, s.test), (160, 20, 20));
        for u in 0..20 {
            let mut all: Vec<u32> = a.train[u]
                .iter()
                .chain(&a.valid[u])
                .chain(&a.test[u])
                .copied()
                .collect();
            all.sort();
            assert_eq!(all, (0..10).collect::<Vec<_>>());
        }
        let other = Split::Ratio {
            train: 0.8,
            valid: 0.1,
            test: 0.1,
            seed: 4,
        }
        .apply(&big, None)
        .unwrap();
        assert_ne!(a.test, other.test);
    }

    #[test]
    fn held_out_users_never_train_on_their_held_out_items() {
        let mut big = Interactions::default();
        for u in 0..30 {
            for i in 0..(3 + u % 9) {
                big.users.push(u);
                big.items.push((u * 7 + i * 3) % 40);
            }
        }
        let split = Split::HeldOutUsers {
            valid_users: 5,
            test_users: 6,
            fold_in: 0.8,
            seed: 11,
        };
        let d = split.apply(&big, None).unwrap();
        let held = d.held_out_users.as_ref().unwrap();
        assert_eq!(held.iter().filter(|h| **h).count(), 11);
        let (valid_users, test_users) = (
            (0..30).filter(|&u| !d.valid[u].is_empty()).count(),
            (0..30).filter(|&u| !d.test[u].is_empty()).count(),
        );
        // Users with fewer than 5 interactions are folded in whole, so at most 5 and 6.
        assert!(valid_users <= 5 && test_users <= 6 && valid_users + test_users > 0);
        for u in 0..30 {
            let n = d.train[u].len() + d.valid[u].len() + d.test[u].len();
            if !held[u] {
                // Training users keep everything for training.
                assert!(d.valid[u].is_empty() && d.test[u].is_empty());
                continue;
            }
            assert!(
                d.valid[u].is_empty() || d.test[u].is_empty(),
                "one role per user"
            );
            let scored = d.valid[u].len() + d.test[u].len();
            let expected = if n >= 5 {
                ((0.2 * n as f64) as usize).max(1)
            } else {
                0
            };
            assert_eq!(scored, expected, "user {u} with {n} items");
            // No held-out item of a held-out user is also a fold-in (training) item.
            for i in d.valid[u].iter().chain(&d.test[u]) {
                assert!(!d.train[u].contains(i), "user {u} item {i} leaks");
            }
        }
        // 10 interactions hold out exactly 2 (not 1 by rounding 0.2 · 10 down).
        let ten = grid(4, 10);
        let every_user_held_out = Split::HeldOutUsers {
            valid_users: 1,
            test_users: 2,
            fold_in: 0.8,
            seed: 0,
        }
        .apply(&ten, None)
        .unwrap();
        for u in 0..4 {
            let scored = every_user_held_out.valid[u].len() + every_user_held_out.test[u].len();
            assert!(
                scored == 0 || scored == 2,
                "user {u}: {scored} held out of 10"
            );
        }
        // User-based models train on the training users' rows only.
        let training: Vec<u32> = (0..30u32).filter(|&u| !held[u as usize]).collect();
        assert_eq!(d.training_users(), training);
        assert_eq!(split.apply(&big, None).unwrap().test, d.test, "seeded");
        let too_many = Split::HeldOutUsers {
            valid_users: 15,
            test_users: 15,
            fold_in: 0.8,
            seed: 0,
        };
        let err = too_many.apply(&big, None).unwrap_err().to_string();
        assert!(err.contains("must be fewer than the 30 users"), "{err}");
    }

    #[test]
    fn bad_ratio_is_rejected() {
        let split = Split::Ratio {
            train: 0.8,
            valid: 0.3,
            test: 0.1,
            seed: 0,
        };
        assert!(
            split
                .apply(&data(), None)
                .unwrap_err()
                .to_string()
                .contains("sum to 1")
        );
    }
}
