//! Per-user ranking metrics over a scored candidate list.
//!
//! # Tie rule
//! Every metric is computed from the rank each relevant item gets when the candidates are ordered by
//! score, highest first, and **a relevant item ranks below every non-relevant item with the same
//! score** (pessimistic ties). The positions of the relevant items therefore depend only on the
//! scores, never on the order in which candidates are given nor on how users are batched, and a
//! model cannot gain from ties: a constant scorer gets the worst possible result, not the best.
//! NaN scores rank below every number. ROC-AUC is the exception: it uses the standard
//! Mann–Whitney definition in which a tied (relevant, non-relevant) pair counts one half, as
//! scikit-learn's `roc_auc_score` does.
//!
//! Top-k lists (used for item coverage) order equal scores by item id, ascending.

use std::cmp::Ordering;

/// Orders scores descending with NaN last; the order used for ranking.
pub(crate) fn descending(a: f32, b: f32) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
    }
}

/// `true` when score `a` ranks at or above score `b` (NaN ranks below everything).
fn at_or_above(a: f32, b: f32) -> bool {
    descending(a, b) != Ordering::Greater
}

/// The 1-based ranks of the relevant candidates under the pessimistic tie rule, ascending.
///
/// `scores[i]` belongs to candidate `i`; `relevant[i]` says whether it is a held-out positive.
/// A relevant item's rank is one plus the number of non-relevant candidates scoring at or above
/// it, plus the number of relevant candidates ordered before it (ties among relevant items do not
/// matter: with binary relevance every metric depends only on the set of positions).
pub fn relevant_ranks(scores: &[f32], relevant: &[bool]) -> Vec<usize> {
    let (relevant_scores, splits) = negative_splits(scores, relevant);
    // The i-th relevant item (0-based) is preceded by i relevant items and by every negative
    // scoring at or above it: those with fewer than i + 1 relevant items strictly above them.
    let mut first_reached = vec![0usize; relevant_scores.len() + 1];
    for &(above, _) in &splits {
        first_reached[above] += 1;
    }
    let mut negatives = 0;
    (0..relevant_scores.len())
        .map(|i| {
            negatives += first_reached[i];
            1 + i + negatives
        })
        .collect()
}

/// The relevant scores sorted in ranking order, and for each non-relevant candidate `x` the
/// pair `(above, at_or_above)`: how many relevant scores rank strictly above `x`, and how many
/// at or above it (ties included). One sort of the (few) relevant scores and a binary search
/// per candidate, so a full-catalogue list costs O(n log r) instead of sorting all n.
fn negative_splits(scores: &[f32], relevant: &[bool]) -> (Vec<f32>, Vec<(usize, usize)>) {
    assert_eq!(scores.len(), relevant.len(), "one relevance flag per score");
    let mut relevant_scores: Vec<f32> = scores
        .iter()
        .zip(relevant)
        .filter(|(_, r)| **r)
        .map(|(s, _)| *s)
        .collect();
    relevant_scores.sort_by(|a, b| descending(*a, *b));
    let splits = scores
        .iter()
        .zip(relevant)
        .filter(|(_, r)| !**r)
        .map(|(&x, _)| {
            let above = relevant_scores.partition_point(|&s| descending(s, x) == Ordering::Less);
            let level_or_above = relevant_scores.partition_point(|&s| at_or_above(s, x));
            (above, level_or_above)
        })
        .collect();
    (relevant_scores, splits)
}

/// Mann–Whitney ROC-AUC of one candidate list: the probability that a random relevant item
/// scores above a random non-relevant one, ties counting one half. `None` when either class is
/// empty (the AUC is undefined).
pub fn roc_auc(scores: &[f32], relevant: &[bool]) -> Option<f64> {
    let (relevant_scores, splits) = negative_splits(scores, relevant);
    if relevant_scores.is_empty() || splits.is_empty() {
        return None;
    }
    // Each negative loses to the relevant items above it and ties with those level with it.
    let wins: f64 = splits
        .iter()
        .map(|&(above, level_or_above)| above as f64 + 0.5 * (level_or_above - above) as f64)
        .sum();
    Some(wins / (relevant_scores.len() as f64 * splits.len() as f64))
}

/// ROC-AUC over (score, is_relevant) pairs, sorting them in place. Ties count one half.
pub fn roc_auc_of_pairs(pairs: &mut [(f32, bool)]) -> Option<f64> {
    let positives = pairs.iter().filter(|p| p.1).count() as f64;
    let negatives = pairs.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    // Ascending by score (NaN lowest); within a block of equal scores every positive beats the
    // negatives strictly below the block and ties with the negatives inside it.
    pairs.sort_by(|a, b| descending(b.0, a.0));
    let mut wins = 0.0f64;
    let mut negatives_below = 0.0f64;
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        let (mut block_pos, mut block_neg) = (0.0f64, 0.0f64);
        while j < pairs.len() && descending(pairs[i].0, pairs[j].0) == Ordering::Equal {
            if pairs[j].1 {
                block_pos += 1.0;
            } else {
                block_neg += 1.0;
            }
            j += 1;
        }
        wins += block_pos * (negatives_below + 0.5 * block_neg);
        negatives_below += block_neg;
        i = j;
    }
    Some(wins / (positives * negatives))
}

/// Cut-off metrics of one user from the ranks of their relevant items.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CutoffValues {
    /// 1 when at least one relevant item is in the top k.
    pub hit: f64,
    /// Relevant items in the top k, divided by k.
    pub precision: f64,
    /// Relevant items in the top k, divided by the number of relevant items.
    pub recall: f64,
    /// Relevant items in the top k, divided by `min(k, relevant)` (Liang et al. 2018, the
    /// Mult-VAE paper's Recall@k: 1 is reachable even when a user has more than k held out).
    pub recall_min: f64,
    /// DCG@k over the ideal DCG@k (binary gains, `1 / log2(rank + 1)` discounts).
    pub ndcg: f64,
    /// Average precision at k, divided by `min(k, relevant)`.
    pub average_precision: f64,
}

/// Computes the cut-off metrics at `k` from ascending 1-based relevant ranks.
pub fn cutoff_values(ranks: &[usize], k: usize) -> CutoffValues {
    let relevant = ranks.len();
    if relevant == 0 || k == 0 {
        return CutoffValues {
            hit: 0.0,
            precision: 0.0,
            recall: 0.0,
            recall_min: 0.0,
            ndcg: 0.0,
            average_precision: 0.0,
        };
    }
    let mut hits = 0usize;
    let mut dcg = 0.0;
    let mut ap = 0.0;
    for &rank in ranks.iter().take_while(|&&r| r <= k) {
        hits += 1;
        dcg += 1.0 / ((rank + 1) as f64).log2();
        ap += hits as f64 / rank as f64;
    }
    let ideal: f64 = (1..=relevant.min(k))
        .map(|i| 1.0 / ((i + 1) as f64).log2())
        .sum();
    CutoffValues {
        hit: if hits > 0 { 1.0 } else { 0.0 },
        precision: hits as f64 / k as f64,
        recall: hits as f64 / relevant as f64,
        recall_min: hits as f64 / relevant.min(k) as f64,
        ndcg: dcg / ideal,
        average_precision: ap / relevant.min(k) as f64,
    }
}

/// Reciprocal rank of the first relevant item (no cut-off); 0 when there is none.
pub fn reciprocal_rank(ranks: &[usize]) -> f64 {
    ranks.first().map_or(0.0, |&r| 1.0 / r as f64)
}

/// The `k` best candidate indices by score (descending), equal scores by item id ascending.
///
/// One pass that keeps the best `k` so far in order; most candidates of a long list fail a
/// single comparison with the current k-th, so a full catalogue costs O(n), not a sort.
pub fn top_k_indices(scores: &[f32], item_ids: &[u32], k: usize) -> Vec<usize> {
    let order =
        |a: usize, b: usize| descending(scores[a], scores[b]).then(item_ids[a].cmp(&item_ids[b]));
    let mut best: Vec<usize> = Vec::with_capacity(k.min(scores.len()).saturating_add(1));
    if k == 0 {
        return best;
    }
    for i in 0..scores.len() {
        if best.len() == k && order(i, best[k - 1]) != Ordering::Less {
            continue;
        }
        // After every kept candidate that is not worse: equal keys (a repeated item id at the
        // same score) keep their list order, as a stable sort would.
        let at = best.partition_point(|&b| order(b, i) != Ordering::Greater);
        best.insert(at, i);
        best.truncate(k);
    }
    best
}
