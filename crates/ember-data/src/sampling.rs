//! Negative sampling: for training (resampled every epoch) and for sampled evaluation
//! protocols (drawn once, seeded).

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::{IndexedRandom, SliceRandom};

/// After this many rejected draws a user is taken to have (almost) no negatives left, and the
/// sampler falls back to listing them.
const MAX_REJECTIONS: usize = 64;

/// One uniform draw from `0..num_items` outside `exclude` (sorted). `None` when every item is
/// excluded.
pub fn uniform_negative(rng: &mut impl Rng, num_items: u32, exclude: &[u32]) -> Option<u32> {
    for _ in 0..MAX_REJECTIONS {
        let item = rng.random_range(0..num_items);
        if exclude.binary_search(&item).is_err() {
            return Some(item);
        }
    }
    // The user has seen most of the catalogue: draw from what is left.
    let left: Vec<u32> = (0..num_items)
        .filter(|i| exclude.binary_search(i).is_err())
        .collect();
    left.choose(rng).copied()
}

/// One epoch of training examples: every training interaction once, shuffled, each with
/// `negatives_per_positive` items the user did not interact with in training.
#[derive(Debug, Clone)]
pub struct TrainingEpoch {
    /// User of each positive, `[n]`.
    pub users: Vec<i32>,
    /// The positive item, `[n]`.
    pub positives: Vec<i32>,
    /// Negatives, `[n * negatives_per_positive]`, row-major: example `e` owns
    /// `negatives[e * k..(e + 1) * k]`.
    pub negatives: Vec<i32>,
    /// `k`.
    pub negatives_per_positive: usize,
    /// Where each positive is in its user's training items, `[n]`: `positives[e]` is
    /// `train[users[e]][slots[e]]` (what looks up its weight).
    pub slots: Vec<u32>,
}

impl TrainingEpoch {
    /// Draws an epoch. `train[u]` are user `u`'s training items, `train_sets[u]` the same sorted.
    pub fn sample(
        train: &[Vec<u32>],
        train_sets: &[Vec<u32>],
        num_items: u32,
        k: usize,
        rng: &mut SmallRng,
    ) -> Self {
        let mut pairs: Vec<(u32, u32, u32)> = train
            .iter()
            .enumerate()
            .flat_map(|(u, items)| {
                items
                    .iter()
                    .enumerate()
                    .map(move |(slot, &i)| (u as u32, i, slot as u32))
            })
            .collect();
        pairs.shuffle(rng);
        let mut negatives = Vec::with_capacity(pairs.len() * k);
        for &(u, _, _) in &pairs {
            for _ in 0..k {
                // A user who saw every item gets a random item: a label-noise corner case that
                // cannot be avoided and does not happen in real data.
                let n = uniform_negative(rng, num_items, &train_sets[u as usize])
                    .unwrap_or_else(|| rng.random_range(0..num_items));
                negatives.push(n as i32);
            }
        }
        Self {
            users: pairs.iter().map(|p| p.0 as i32).collect(),
            positives: pairs.iter().map(|p| p.1 as i32).collect(),
            negatives,
            negatives_per_positive: k,
            slots: pairs.iter().map(|p| p.2).collect(),
        }
    }

    /// Number of positive examples.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// `true` when there are none.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// Draws `n` distinct evaluation negatives per user, outside `known[u]` (sorted), uniformly or in
/// proportion to `popularity` (training counts; items never seen get weight 1 so that every
/// item can be drawn). Seeded, so every model is scored on the same candidates.
pub fn evaluation_negatives(
    known: &[Vec<u32>],
    num_items: u32,
    n: usize,
    popularity: Option<&[u32]>,
    seed: u64,
) -> Vec<Vec<u32>> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let cumulative: Option<Vec<f64>> = popularity.map(|p| {
        p.iter()
            .scan(0.0, |acc, &c| {
                *acc += c.max(1) as f64;
                Some(*acc)
            })
            .collect()
    });
    known
        .iter()
        .map(|exclude| {
            let available = num_items as usize - exclude.len();
            let want = n.min(available);
            let mut drawn: Vec<u32> = Vec::with_capacity(want);
            let mut tries = 0;
            while drawn.len() < want && tries < want * MAX_REJECTIONS {
                tries += 1;
                let item = match &cumulative {
                    None => rng.random_range(0..num_items),
                    Some(c) => {
                        let x = rng.random::<f64>() * c[c.len() - 1];
                        c.partition_point(|&v| v <= x).min(c.len() - 1) as u32
                    }
                };
                if exclude.binary_search(&item).is_err() && !drawn.contains(&item) {
                    drawn.push(item);
                }
            }
            if drawn.len() < want {
                // Rejection failed (tiny catalogue): fill uniformly from what is left.
                let mut left: Vec<u32> = (0..num_items)
                    .filter(|i| exclude.binary_search(i).is_err() && !drawn.contains(i))
                    .collect();
                left.shuffle(&mut rng);
                drawn.extend(left.into_iter().take(want - drawn.len()));
            }
            drawn
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_negatives_avoid_training_items() {
        let train = vec![vec![0, 1, 2], vec![3]];
        let sets = crate::dataset::sorted_sets(train.iter().map(|v| v.as_slice()));
        let mut rng = SmallRng::seed_from_u64(1);
        let epoch = TrainingEpoch::sample(&train, &sets, 5, 4, &mut rng);
        assert_eq!(epoch.len(), 4);
        assert_eq!(epoch.negatives.len(), 16);
        for (e, &u) in epoch.users.iter().enumerate() {
            for &n in &epoch.negatives[e * 4..(e + 1) * 4] {
                assert!(!train[u as usize].contains(&(n as u32)));
            }
        }
    }

    #[test]
    fn evaluation_negatives_are_distinct_unseen_and_seeded() {
        let known = vec![vec![0, 1], vec![5, 6, 7, 8, 9]];
        let a = evaluation_negatives(&known, 10, 4, None, 7);
        assert_eq!(a, evaluation_negatives(&known, 10, 4, None, 7));
        for (u, negs) in a.iter().enumerate() {
            assert_eq!(negs.len(), 4);
            let mut d = negs.clone();
            d.sort();
            d.dedup();
            assert_eq!(d.len(), 4);
            assert!(negs.iter().all(|n| !known[u].contains(n)));
        }
        // User 1 has only 5 unseen items; asking 8 gives all of them.
        let all = evaluation_negatives(&known, 10, 8, Some(&[9, 1, 1, 1, 1, 1, 1, 1, 1, 1]), 7);
        let mut u1 = all[1].clone();
        u1.sort();
        assert_eq!(u1, vec![0, 1, 2, 3, 4]);
    }
}
