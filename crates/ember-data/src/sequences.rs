//! Training examples for sequence models (SASRec, BERT4Rec, GRU4Rec): each user's training
//! items, in time order, cut to a window of the last `max_len` and left-padded, in the token
//! scheme of [`ember_spec::tokens`]. Targets are internal item ids, one per position that has
//! one.

use ember_spec::tokens::{mask, window};
use rand::Rng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;

use crate::sampling::uniform_negative;

/// One epoch of sequence examples, one row (window) per user, in shuffled order, with the
/// targets of all rows in flat arrays.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceEpoch {
    /// Window length.
    pub max_len: usize,
    /// Sampled negatives per target (`k`).
    pub negatives_per_target: usize,
    /// The user of each row.
    pub users: Vec<u32>,
    /// `[rows * max_len]` input tokens, row-major.
    pub inputs: Vec<i32>,
    /// `[rows + 1]`: row `r`'s targets are `targets[offsets[r]..offsets[r + 1]]`.
    pub offsets: Vec<usize>,
    /// Each target's position in its row's window (`0..max_len`).
    pub positions: Vec<usize>,
    /// Each target's item.
    pub targets: Vec<u32>,
    /// `[targets * k]` sampled negatives, row-major.
    pub negatives: Vec<u32>,
}

impl SequenceEpoch {
    fn empty(max_len: usize, negatives_per_target: usize, users: Vec<u32>) -> Self {
        Self {
            max_len,
            negatives_per_target,
            inputs: Vec::with_capacity(users.len() * max_len),
            offsets: vec![0],
            users,
            positions: Vec::new(),
            targets: Vec::new(),
            negatives: Vec::new(),
        }
    }

    /// Next-item examples (SASRec): for each of `users` with at least 2 training items, the
    /// input is the window of all items but the last, and the target at each position is the
    /// item that follows it, with `negatives` items drawn uniformly from outside the user's
    /// training items (`train_sets[u]`, sorted).
    pub fn next_item(
        train: &[Vec<u32>],
        users: &[u32],
        train_sets: &[Vec<u32>],
        num_items: usize,
        max_len: usize,
        negatives: usize,
        rng: &mut SmallRng,
    ) -> Self {
        let mut users: Vec<u32> = users
            .iter()
            .copied()
            .filter(|&u| train[u as usize].len() >= 2)
            .collect();
        users.shuffle(rng);
        let mut epoch = Self::empty(max_len, negatives, users);
        let num_items = num_items as u32;
        for &u in &epoch.users {
            let items = &train[u as usize];
            let history = &items[..items.len() - 1];
            let next = &items[items.len() - history.len().min(max_len)..];
            epoch.inputs.extend(window(history, max_len));
            let first = max_len - next.len();
            for (t, &item) in next.iter().enumerate() {
                epoch.positions.push(first + t);
                epoch.targets.push(item);
                for _ in 0..negatives {
                    let n = uniform_negative(rng, num_items, &train_sets[u as usize])
                        .unwrap_or_else(|| rng.random_range(0..num_items));
                    epoch.negatives.push(n);
                }
            }
            epoch.offsets.push(epoch.targets.len());
        }
        epoch
    }

    /// Masked-item examples (BERT4Rec's cloze task): for each of `users` with training items,
    /// the window of their last `max_len` items with each item replaced by the mask token with
    /// probability `mask_prob` (the last item when none was drawn); the targets are the masked
    /// items. No negatives: the loss is a softmax over every item.
    pub fn masked_item(
        train: &[Vec<u32>],
        users: &[u32],
        num_items: usize,
        max_len: usize,
        mask_prob: f64,
        rng: &mut SmallRng,
    ) -> Self {
        let mut users: Vec<u32> = users
            .iter()
            .copied()
            .filter(|&u| !train[u as usize].is_empty())
            .collect();
        users.shuffle(rng);
        let mut epoch = Self::empty(max_len, 0, users);
        let mask_token = mask(num_items);
        for &u in &epoch.users {
            let items = &train[u as usize];
            let kept = &items[items.len().saturating_sub(max_len)..];
            let first = max_len - kept.len();
            let mut row = window(items, max_len);
            let row_start = epoch.targets.len();
            for (t, &item) in kept.iter().enumerate() {
                if rng.random_bool(mask_prob) {
                    epoch.positions.push(first + t);
                    epoch.targets.push(item);
                }
            }
            if epoch.targets.len() == row_start {
                epoch.positions.push(max_len - 1);
                epoch.targets.push(*kept.last().expect("non-empty"));
            }
            for &position in &epoch.positions[row_start..] {
                row[position] = mask_token;
            }
            epoch.inputs.extend(row);
            epoch.offsets.push(epoch.targets.len());
        }
        epoch
    }

    /// Number of rows (users).
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// `true` when no user has an example.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The rows `rows` as flat arrays for one batch: `(inputs [rows.len() * max_len], positions,
    /// targets, negatives)`, where `positions[j]` is the flat index (`row * max_len + t`) of
    /// target `j` and `negatives` holds `k` items per target, row-major.
    pub fn batch(&self, rows: std::ops::Range<usize>) -> FlatBatch {
        let len = self.max_len;
        let k = self.negatives_per_target;
        let targets = self.offsets[rows.start]..self.offsets[rows.end];
        let mut positions = Vec::with_capacity(targets.len());
        for (r, row) in rows.clone().enumerate() {
            for j in self.offsets[row]..self.offsets[row + 1] {
                positions.push((r * len + self.positions[j]) as i32);
            }
        }
        FlatBatch {
            inputs: self.inputs[rows.start * len..rows.end * len].to_vec(),
            positions,
            targets: self.targets[targets.clone()]
                .iter()
                .map(|&i| i as i32)
                .collect(),
            negatives: self.negatives[targets.start * k..targets.end * k]
                .iter()
                .map(|&i| i as i32)
                .collect(),
        }
    }

    /// Row `r`'s targets as `(position, item)`.
    pub fn row_targets(&self, r: usize) -> impl Iterator<Item = (usize, u32)> + '_ {
        (self.offsets[r]..self.offsets[r + 1]).map(|j| (self.positions[j], self.targets[j]))
    }
}

/// One batch of a [`SequenceEpoch`] as flat host arrays, ready to upload.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatBatch {
    /// `[rows * max_len]` input tokens.
    pub inputs: Vec<i32>,
    /// `[targets]` flat positions (`row * max_len + t`).
    pub positions: Vec<i32>,
    /// `[targets]` target items.
    pub targets: Vec<i32>,
    /// `[targets * k]` negatives.
    pub negatives: Vec<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_spec::tokens;
    use rand::SeedableRng;

    #[test]
    fn next_item_targets_are_the_following_items() {
        let train = vec![vec![3, 1, 4, 2], vec![5], vec![0, 6]];
        let sets = crate::sorted_sets(train.iter().map(|v| v.as_slice()));
        let mut rng = SmallRng::seed_from_u64(1);
        let epoch = SequenceEpoch::next_item(&train, &[0, 1, 2], &sets, 8, 3, 2, &mut rng);
        assert_eq!(epoch.len(), 2, "user 1 has one item: no example");
        let row = epoch.users.iter().position(|&u| u == 0).unwrap();
        // History 3 1 4 (window 3), targets 1 4 2 at positions 0 1 2.
        assert_eq!(&epoch.inputs[row * 3..row * 3 + 3], &[4, 2, 5]);
        let targets: Vec<(usize, u32)> = epoch.row_targets(row).collect();
        assert_eq!(targets, vec![(0, 1), (1, 4), (2, 2)]);
        let negatives = &epoch.negatives[epoch.offsets[row] * 2..epoch.offsets[row + 1] * 2];
        assert_eq!(negatives.len(), 6);
        assert!(negatives.iter().all(|n| !train[0].contains(n) && *n < 8));
        let row = epoch.users.iter().position(|&u| u == 2).unwrap();
        assert_eq!(&epoch.inputs[row * 3..row * 3 + 3], &[0, 0, 1]);
        assert_eq!(epoch.row_targets(row).collect::<Vec<_>>(), vec![(2, 6)]);
        let batch = epoch.batch(row..row + 1);
        assert_eq!(batch.positions, vec![2]);
        assert_eq!(batch.targets, vec![6]);
        assert_eq!(batch.negatives.len(), 2);
        // A two-row batch: the second row's positions are offset by one window.
        let both = epoch.batch(0..2);
        assert_eq!(both.inputs.len(), 6);
        assert_eq!(both.targets.len(), 4);
        assert!(both.positions[..].iter().all(|&p| p < 6));
        assert_eq!(both.negatives.len(), 8);
    }

    #[test]
    fn masked_item_masks_what_it_targets() {
        let train = vec![vec![3, 1, 4, 2, 0, 5], vec![6]];
        let mut rng = SmallRng::seed_from_u64(3);
        let epoch = SequenceEpoch::masked_item(&train, &[0, 1], 7, 4, 0.5, &mut rng);
        let mask_token = mask(7);
        for (row, &u) in epoch.users.iter().enumerate() {
            let inputs = &epoch.inputs[row * 4..row * 4 + 4];
            let plain = window(&train[u as usize], 4);
            let targets: Vec<(usize, u32)> = epoch.row_targets(row).collect();
            assert!(!targets.is_empty());
            for t in 0..4 {
                match targets.iter().find(|x| x.0 == t) {
                    Some(&(_, item)) => {
                        assert_eq!(inputs[t], mask_token);
                        assert_eq!(tokens::item(item), plain[t]);
                    }
                    None => assert_eq!(inputs[t], plain[t]),
                }
            }
        }
    }
}
