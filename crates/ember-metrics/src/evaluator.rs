use serde::{Deserialize, Serialize};

use crate::MetricsError;
use crate::names::{
    AUC_GLOBAL, AUC_USER, COVERAGE, HR, MAE, MAP, MRR, NDCG, PRECISION, RECALL, RMSE, at_k,
    recall_min,
};
use crate::ranking::{
    cutoff_values, reciprocal_rank, relevant_ranks, roc_auc, roc_auc_of_pairs, top_k_indices,
};

/// Above this many scored pairs the global ROC-AUC is not kept (it needs every pair in memory).
const GLOBAL_AUC_MAX_PAIRS: usize = 200_000_000;

/// Averages per-user ranking metrics over users.
///
/// Users with no relevant candidate are skipped (counted in [`MetricsReport::skipped_users`]).
/// Per-user ROC-AUC is averaged over users that have both relevant and non-relevant candidates.
#[derive(Debug, Clone)]
pub struct RankingEvaluator {
    ks: Vec<usize>,
    num_items: usize,
    users: usize,
    skipped: usize,
    // Sums over users, one entry per cut-off.
    hit: Vec<f64>,
    precision: Vec<f64>,
    recall: Vec<f64>,
    recall_min: Vec<f64>,
    ndcg: Vec<f64>,
    map: Vec<f64>,
    mrr: f64,
    auc_sum: f64,
    auc_users: usize,
    covered: Vec<Vec<bool>>,
    pairs: Option<Vec<(f32, bool)>>,
}

impl RankingEvaluator {
    /// An evaluator for the cut-offs `ks` over a catalogue of `num_items` items.
    pub fn new(ks: &[usize], num_items: usize) -> Result<Self, MetricsError> {
        if ks.is_empty() {
            return Err(MetricsError::NoCutoffs);
        }
        if ks.contains(&0) {
            return Err(MetricsError::ZeroCutoff);
        }
        let mut ks = ks.to_vec();
        ks.sort_unstable();
        ks.dedup();
        let n = ks.len();
        Ok(Self {
            covered: vec![vec![false; num_items]; n],
            ks,
            num_items,
            users: 0,
            skipped: 0,
            hit: vec![0.0; n],
            precision: vec![0.0; n],
            recall: vec![0.0; n],
            recall_min: vec![0.0; n],
            ndcg: vec![0.0; n],
            map: vec![0.0; n],
            mrr: 0.0,
            auc_sum: 0.0,
            auc_users: 0,
            pairs: Some(Vec::new()),
        })
    }

    /// Leaves out the global ROC-AUC, which keeps every scored pair in memory (for repeated
    /// evaluations such as per-epoch validation).
    pub fn without_global_auc(mut self) -> Self {
        self.pairs = None;
        self
    }

    /// Leaves out the global ROC-AUC at once when the caller will add `pairs` scored pairs and
    /// that exceeds the limit (it would be dropped on reaching the limit, after holding that
    /// many).
    pub fn expecting_pairs(self, pairs: usize) -> Self {
        if pairs > GLOBAL_AUC_MAX_PAIRS {
            self.without_global_auc()
        } else {
            self
        }
    }

    /// Adds one user: `items[i]` scored `scores[i]`, relevant (held out) when `relevant[i]`.
    ///
    /// # Panics
    /// When the three slices differ in length or an item id is outside the catalogue; both are
    /// programming errors of the caller, not data errors.
    pub fn add_user(&mut self, items: &[u32], scores: &[f32], relevant: &[bool]) {
        assert!(items.len() == scores.len() && scores.len() == relevant.len());
        let ranks = relevant_ranks(scores, relevant);
        if ranks.is_empty() {
            self.skipped += 1;
            return;
        }
        self.users += 1;
        for (slot, &k) in self.ks.iter().enumerate() {
            let v = cutoff_values(&ranks, k);
            self.hit[slot] += v.hit;
            self.precision[slot] += v.precision;
            self.recall[slot] += v.recall;
            self.recall_min[slot] += v.recall_min;
            self.ndcg[slot] += v.ndcg;
            self.map[slot] += v.average_precision;
        }
        self.mrr += reciprocal_rank(&ranks);
        if let Some(auc) = roc_auc(scores, relevant) {
            self.auc_sum += auc;
            self.auc_users += 1;
        }
        let k_max = *self.ks.last().expect("at least one cut-off");
        let top = top_k_indices(scores, items, k_max);
        for (slot, &k) in self.ks.iter().enumerate() {
            for &i in top.iter().take(k) {
                self.covered[slot][items[i] as usize] = true;
            }
        }
        if let Some(pairs) = &mut self.pairs {
            if pairs.len() + scores.len() > GLOBAL_AUC_MAX_PAIRS {
                self.pairs = None;
            } else {
                pairs.extend(scores.iter().copied().zip(relevant.iter().copied()));
            }
        }
    }

    /// Averages what was added into a report labelled with `protocol`.
    pub fn finish(self, protocol: impl Into<String>) -> MetricsReport {
        // With no users every average is undefined: NaN, not a misleading 0.
        let n = if self.users == 0 {
            f64::NAN
        } else {
            self.users as f64
        };
        let mut metrics = Vec::new();
        for (slot, &k) in self.ks.iter().enumerate() {
            metrics.push((at_k(HR, k), self.hit[slot] / n));
            metrics.push((at_k(NDCG, k), self.ndcg[slot] / n));
            metrics.push((at_k(PRECISION, k), self.precision[slot] / n));
            metrics.push((at_k(RECALL, k), self.recall[slot] / n));
            metrics.push((recall_min(k), self.recall_min[slot] / n));
            metrics.push((at_k(MAP, k), self.map[slot] / n));
            let covered = self.covered[slot].iter().filter(|c| **c).count();
            metrics.push((
                at_k(COVERAGE, k),
                covered as f64 / self.num_items.max(1) as f64,
            ));
        }
        metrics.push((MRR.into(), self.mrr / n));
        if self.auc_users > 0 {
            metrics.push((AUC_USER.into(), self.auc_sum / self.auc_users as f64));
        }
        if let Some(mut pairs) = self.pairs
            && let Some(auc) = roc_auc_of_pairs(&mut pairs)
        {
            metrics.push((AUC_GLOBAL.into(), auc));
        }
        MetricsReport {
            protocol: protocol.into(),
            users: self.users,
            skipped_users: self.skipped,
            metrics,
        }
    }
}

/// Averaged metrics with the protocol that produced them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsReport {
    /// What the candidates were (see [`crate::Protocol`]'s `Display`).
    pub protocol: String,
    /// Users averaged over.
    pub users: usize,
    /// Users with no relevant candidate, left out.
    pub skipped_users: usize,
    /// Metric name → value, in a stable order.
    pub metrics: Vec<(String, f64)>,
}

/// RMSE and MAE of `(predicted, actual)` ratings over `users` users, labelled `protocol`
/// (NaN for none).
pub fn rating_report(
    pairs: impl IntoIterator<Item = (f32, f32)>,
    users: usize,
    protocol: impl Into<String>,
) -> MetricsReport {
    let (mut n, mut squared, mut absolute) = (0usize, 0.0f64, 0.0f64);
    for (predicted, actual) in pairs {
        let e = (predicted - actual) as f64;
        squared += e * e;
        absolute += e.abs();
        n += 1;
    }
    let (rmse, mae) = if n == 0 {
        (f64::NAN, f64::NAN)
    } else {
        ((squared / n as f64).sqrt(), absolute / n as f64)
    };
    MetricsReport {
        protocol: protocol.into(),
        users,
        skipped_users: 0,
        metrics: vec![(RMSE.into(), rmse), (MAE.into(), mae)],
    }
}

impl MetricsReport {
    /// Whether this reports rating prediction (RMSE, MAE) rather than a ranking.
    pub fn is_rating(&self) -> bool {
        self.get(RMSE).is_some()
    }

    /// The value of the metric named `name` (e.g. `"NDCG@10"`).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expecting_too_many_pairs_leaves_out_the_global_auc() {
        let run = |evaluator: RankingEvaluator| {
            let mut evaluator = evaluator;
            evaluator.add_user(&[0, 1, 2], &[0.9, 0.1, 0.5], &[true, false, false]);
            evaluator.finish("test").get(AUC_GLOBAL)
        };
        let new = || RankingEvaluator::new(&[2], 3).unwrap();
        assert_eq!(run(new().expecting_pairs(3)), Some(1.0));
        assert_eq!(run(new().expecting_pairs(GLOBAL_AUC_MAX_PAIRS)), Some(1.0));
        assert_eq!(run(new().expecting_pairs(GLOBAL_AUC_MAX_PAIRS + 1)), None);
    }
}
