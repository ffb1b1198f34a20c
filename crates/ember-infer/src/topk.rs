//! Top-k: the `k` best of a score per internal id, best first. Ties go to the smaller internal
//! id, which is the smaller external key: a manifest's keys are strictly ascending (integers
//! by value, strings by their bytes, as [`crate::Key`] orders them). NaN scores (excluded
//! items) never enter.

use crate::Key;

/// An external key with its score.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// External key (item for recommendations, user for audiences).
    pub id: Key,
    /// Model score (a logit: higher is better).
    pub score: f32,
}

/// An internal id with its score, as top-k ranks them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ranked {
    /// Internal id (item for recommendations, user for audiences).
    pub(crate) index: u32,
    /// Model score.
    pub(crate) score: f32,
}

/// Above this `k`, top-k sorts every score instead of keeping a bounded insertion list, whose
/// inserts cost `O(k)` each (an audience or a gains curve ranks every user).
const SORT_ABOVE: usize = 512;

/// The `k` best of `scores` (NaN: left out), by internal id, best first, ties by id ascending.
pub(crate) fn top_k(scores: &[f32], k: usize) -> Vec<Ranked> {
    if k > SORT_ABOVE {
        let mut all: Vec<Ranked> = scores
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_nan())
            .map(|(i, &score)| Ranked {
                index: i as u32,
                score,
            })
            .collect();
        all.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
        all.truncate(k);
        return all;
    }
    let mut best = TopK::new(k);
    for (i, &score) in scores.iter().enumerate() {
        // Most items lose against the current k-th best: one comparison, nothing built.
        if score >= best.threshold {
            best.push(Ranked {
                index: i as u32,
                score,
            });
        }
    }
    best.items
}

/// The best `k` seen so far, best first, in a bounded insertion list: k is small in serving.
struct TopK {
    k: usize,
    items: Vec<Ranked>,
    /// Scores below this cannot enter (the k-th best's score once there are k).
    threshold: f32,
}

impl TopK {
    fn new(k: usize) -> Self {
        Self {
            k,
            items: Vec::with_capacity(k.saturating_add(1).min(1 << 16)),
            threshold: f32::NEG_INFINITY,
        }
    }

    fn push(&mut self, s: Ranked) {
        let better =
            |a: &Ranked, b: &Ranked| a.score > b.score || (a.score == b.score && a.index < b.index);
        if self.k == 0 || s.score.is_nan() {
            return;
        }
        if self.items.len() == self.k && !better(&s, &self.items[self.k - 1]) {
            return;
        }
        let at = self.items.partition_point(|b| better(b, &s));
        self.items.insert(at, s);
        self.items.truncate(self.k);
        if self.items.len() == self.k {
            self.threshold = self.items[self.k - 1].score;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_go_to_the_smaller_id_and_nan_is_left_out() {
        let scores = [0.5, f32::NAN, 0.9, 0.5, 0.1];
        let top: Vec<u32> = top_k(&scores, 3).iter().map(|s| s.index).collect();
        assert_eq!(top, vec![2, 0, 3]);
        assert!(top_k(&scores, 0).is_empty());
        assert_eq!(top_k(&scores, 10).len(), 4);
    }

    /// A large k sorts instead of inserting: the same answer.
    #[test]
    fn a_large_k_gives_the_insertion_lists_answer() {
        let n = 5_000;
        let scores: Vec<f32> = (0..n)
            .map(|i| {
                if i % 97 == 0 {
                    f32::NAN
                } else {
                    ((i * 7919) % 1_000) as f32
                }
            })
            .collect();
        let mut small = TopK::new(SORT_ABOVE + 100);
        scores.iter().enumerate().for_each(|(i, &score)| {
            small.push(Ranked {
                index: i as u32,
                score,
            })
        });
        assert_eq!(top_k(&scores, SORT_ABOVE + 100), small.items);
        let all = top_k(&scores, n);
        assert_eq!(all.len(), n - n.div_ceil(97));
    }
}
