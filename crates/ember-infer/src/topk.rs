//! Top-k: the `k` best of a score per id, best first. Ties go to the smaller external id, so
//! the answer does not depend on the internal order; NaN scores (excluded items) never enter.

/// An external id with its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// External id (item for recommendations, user for audiences).
    pub id: i64,
    /// Model score (a logit: higher is better).
    pub score: f32,
}

/// Above this `k`, top-k sorts every score instead of keeping a bounded insertion list, whose
/// inserts cost `O(k)` each (an audience or a gains curve ranks every user).
const SORT_ABOVE: usize = 512;

/// The `k` best of `scores` (NaN: left out), named by `ids`, best first, ties by id ascending.
pub(crate) fn top_k(scores: &[f32], ids: &[i64], k: usize) -> Vec<Scored> {
    if k > SORT_ABOVE {
        let mut all: Vec<Scored> = scores
            .iter()
            .zip(ids)
            .filter(|(s, _)| !s.is_nan())
            .map(|(&score, &id)| Scored { id, score })
            .collect();
        all.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        all.truncate(k);
        return all;
    }
    let mut best = TopK::new(k);
    for (i, &score) in scores.iter().enumerate() {
        // Most items lose against the current k-th best: one comparison, nothing built.
        if score >= best.threshold {
            best.push(Scored { id: ids[i], score });
        }
    }
    best.items
}

/// The best `k` seen so far, best first, in a bounded insertion list: k is small in serving.
struct TopK {
    k: usize,
    items: Vec<Scored>,
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

    fn push(&mut self, s: Scored) {
        let better =
            |a: &Scored, b: &Scored| a.score > b.score || (a.score == b.score && a.id < b.id);
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
        let ids = [40, 10, 30, 20, 50];
        let top: Vec<i64> = top_k(&scores, &ids, 3).iter().map(|s| s.id).collect();
        assert_eq!(top, vec![30, 20, 40]);
        assert!(top_k(&scores, &ids, 0).is_empty());
        assert_eq!(top_k(&scores, &ids, 10).len(), 4);
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
        let ids: Vec<i64> = (0..n as i64).rev().collect();
        let mut small = TopK::new(SORT_ABOVE + 100);
        scores
            .iter()
            .zip(&ids)
            .for_each(|(&score, &id)| small.push(Scored { id, score }));
        assert_eq!(top_k(&scores, &ids, SORT_ABOVE + 100), small.items);
        let all = top_k(&scores, &ids, n);
        assert_eq!(all.len(), n - n.div_ceil(97));
    }
}
