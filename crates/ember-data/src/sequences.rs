//! Training examples for sequence models (SASRec, BERT4Rec): each user's training items, in
//! time order, cut to a window of the last `max_len` and left-padded.
//!
//! Tokens: `0` pads, internal item `i` is token `i + 1`, and a masked-item model's mask token is
//! `num_items + 1`. Targets are internal item ids, one per position that has one.

use rand::Rng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;

use crate::sampling::uniform_negative;

/// The padding token.
pub const PAD_TOKEN: i32 = 0;

/// The token of internal item `item`.
pub fn item_token(item: u32) -> i32 {
    item as i32 + 1
}

/// The mask token of a masked-item model over `num_items` items.
pub fn mask_token(num_items: usize) -> i32 {
    num_items as i32 + 1
}

/// The tokens of the last `max_len` items of `items`, left-padded to `max_len`.
pub fn window(items: &[u32], max_len: usize) -> Vec<i32> {
    let kept = &items[items.len().saturating_sub(max_len)..];
    let mut tokens = vec![PAD_TOKEN; max_len - kept.len()];
    tokens.extend(kept.iter().map(|&i| item_token(i)));
    tokens
}

/// What a sequence model predicts from a history: the next item (SASRec: the window of the
/// history), or the item behind a mask token appended to it (BERT4Rec).
pub fn scoring_window(items: &[u32], max_len: usize, mask: Option<i32>) -> Vec<i32> {
    match mask {
        None => window(items, max_len),
        Some(mask) => {
            let mut tokens = window(items, max_len - 1);
            tokens.push(mask);
            tokens
        }
    }
}

/// One epoch of sequence examples, one row per user, in shuffled order.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceEpoch {
    /// Window length.
    pub max_len: usize,
    /// The user of each row.
    pub users: Vec<u32>,
    /// `[rows * max_len]` input tokens, row-major.
    pub inputs: Vec<i32>,
    /// Per row, the positions (`0..max_len`) that carry a target, with the target item and its
    /// sampled negatives: `(position, target, negatives)`.
    pub targets: Vec<Vec<(usize, u32, Vec<u32>)>>,
}

impl SequenceEpoch {
    /// Next-item examples (SASRec): for each of `users` with at least 2 training items, the input is
    /// the window of all items but the last, and the target at each position is the item that
    /// follows it, with `negatives` items drawn uniformly from outside the user's training items
    /// (`train_sets[u]`, sorted).
    pub fn next_item(
        train: &[Vec<u32>],
        users: &[u32],
        train_sets: &[Vec<u32>],
        num_items: u32,
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
        let mut inputs = Vec::with_capacity(users.len() * max_len);
        let mut targets = Vec::with_capacity(users.len());
        for &u in &users {
            let items = &train[u as usize];
            let history = &items[..items.len() - 1];
            let next = &items[items.len() - history.len().min(max_len)..];
            inputs.extend(window(history, max_len));
            let first = max_len - next.len();
            targets.push(
                next.iter()
                    .enumerate()
                    .map(|(t, &item)| {
                        let negs = (0..negatives)
                            .map(|_| {
                                uniform_negative(rng, num_items, &train_sets[u as usize])
                                    .unwrap_or_else(|| rng.random_range(0..num_items))
                            })
                            .collect();
                        (first + t, item, negs)
                    })
                    .collect(),
            );
        }
        Self {
            max_len,
            users,
            inputs,
            targets,
        }
    }

    /// Masked-item examples (BERT4Rec's cloze task): for each of `users` with training items, the
    /// window of their last `max_len` items with each item replaced by the mask token with
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
        let mask = mask_token(num_items);
        let mut inputs = Vec::with_capacity(users.len() * max_len);
        let mut targets = Vec::with_capacity(users.len());
        for &u in &users {
            let items = &train[u as usize];
            let kept = &items[items.len().saturating_sub(max_len)..];
            let first = max_len - kept.len();
            let mut row = window(items, max_len);
            let mut masked: Vec<(usize, u32, Vec<u32>)> = kept
                .iter()
                .enumerate()
                .filter(|_| rng.random_bool(mask_prob))
                .map(|(t, &item)| (first + t, item, Vec::new()))
                .collect();
            if masked.is_empty() {
                masked.push((max_len - 1, *kept.last().expect("non-empty"), Vec::new()));
            }
            for &(position, _, _) in &masked {
                row[position] = mask;
            }
            inputs.extend(row);
            targets.push(masked);
        }
        Self {
            max_len,
            users,
            inputs,
            targets,
        }
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
        let inputs = self.inputs[rows.start * len..rows.end * len].to_vec();
        let mut positions = Vec::new();
        let mut targets = Vec::new();
        let mut negatives = Vec::new();
        for (r, row) in self.targets[rows].iter().enumerate() {
            for (t, target, negs) in row {
                positions.push((r * len + t) as i32);
                targets.push(*target as i32);
                negatives.extend(negs.iter().map(|&n| n as i32));
            }
        }
        FlatBatch {
            inputs,
            positions,
            targets,
            negatives,
        }
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
    use rand::SeedableRng;

    #[test]
    fn window_pads_on_the_left_and_keeps_the_latest() {
        assert_eq!(window(&[4, 7], 4), vec![0, 0, 5, 8]);
        assert_eq!(window(&[1, 2, 3, 4, 5], 3), vec![4, 5, 6]);
        assert_eq!(scoring_window(&[1, 2, 3], 3, Some(99)), vec![3, 4, 99]);
    }

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
        let targets: Vec<(usize, u32)> = epoch.targets[row].iter().map(|t| (t.0, t.1)).collect();
        assert_eq!(targets, vec![(0, 1), (1, 4), (2, 2)]);
        for (_, _, negs) in &epoch.targets[row] {
            assert_eq!(negs.len(), 2);
            assert!(negs.iter().all(|n| !train[0].contains(n) && *n < 8));
        }
        let row = epoch.users.iter().position(|&u| u == 2).unwrap();
        assert_eq!(&epoch.inputs[row * 3..row * 3 + 3], &[0, 0, 1]);
        assert_eq!(epoch.targets[row][0].0, 2);
        assert_eq!(epoch.targets[row][0].1, 6);
        let batch = epoch.batch(row..row + 1);
        assert_eq!(batch.positions, vec![2]);
        assert_eq!(batch.targets, vec![6]);
        assert_eq!(batch.negatives.len(), 2);
    }

    #[test]
    fn masked_item_masks_what_it_targets() {
        let train = vec![vec![3, 1, 4, 2, 0, 5], vec![6]];
        let mut rng = SmallRng::seed_from_u64(3);
        let epoch = SequenceEpoch::masked_item(&train, &[0, 1], 7, 4, 0.5, &mut rng);
        let mask = mask_token(7);
        for (row, &u) in epoch.users.iter().enumerate() {
            let inputs = &epoch.inputs[row * 4..row * 4 + 4];
            let plain = window(&train[u as usize], 4);
            assert!(!epoch.targets[row].is_empty());
            for t in 0..4 {
                match epoch.targets[row].iter().find(|x| x.0 == t) {
                    Some(&(_, item, _)) => {
                        assert_eq!(inputs[t], mask);
                        assert_eq!(item_token(item), plain[t]);
                    }
                    None => assert_eq!(inputs[t], plain[t]),
                }
            }
        }
    }
}
