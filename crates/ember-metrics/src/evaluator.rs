use serde::{Deserialize, Serialize};

use crate::MetricsError;
use crate::candidates::{NegativeCounts, Tally, warnings};
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
    /// Every user's values, in order, when recording (see [`RankingEvaluator::recording`]).
    recorded: Option<Vec<f64>>,
    /// Negatives asked for per user (see [`RankingEvaluator::asking`]).
    asked: Option<usize>,
    negatives: Tally,
    /// The user groups' names and sums, when the metrics are broken down by group (see
    /// [`RankingEvaluator::grouped`]).
    groups: Vec<(String, GroupSums)>,
}

/// The sums of one group of users, for the metrics a breakdown reports.
#[derive(Debug, Clone, Default)]
struct GroupSums {
    users: usize,
    hit: Vec<f64>,
    recall: Vec<f64>,
    ndcg: Vec<f64>,
    mrr: f64,
    auc_sum: f64,
    auc_users: usize,
}

/// The metrics of one group of users (cold users, an activity band…): a breakdown of a
/// report's averages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    /// The group, as the table names it (`1–5 training interactions`).
    pub group: String,
    /// Users of the group averaged over (those with a relevant candidate).
    pub users: usize,
    /// Metric name → value: HR, NDCG and Recall at each cut-off, MRR, ROC-AUC (none for a
    /// group without users).
    pub metrics: Vec<(String, f64)>,
}

/// The users one [`RankingEvaluator`] saw, to be merged into another
/// ([`RankingEvaluator::absorb`]): each rank of a distributed evaluation scores its shard of the
/// users and the parts are put together in user order.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluatorPart {
    skipped: usize,
    rows: Vec<f64>,
    covered: Vec<Vec<bool>>,
    pairs: Option<Vec<(f32, bool)>>,
}

impl EvaluatorPart {
    /// The part as bytes, to send to other processes (little-endian; read back with
    /// [`EvaluatorPart::from_bytes`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let items = self.covered.first().map_or(0, Vec::len);
        let pairs = self.pairs.as_ref().map(Vec::len);
        for n in [
            self.skipped,
            self.rows.len(),
            self.covered.len(),
            items,
            pairs.map_or(usize::MAX, |n| n),
        ] {
            out.extend_from_slice(&(n as u64).to_le_bytes());
        }
        for v in &self.rows {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for slot in &self.covered {
            out.extend(slot.iter().map(|&c| c as u8));
        }
        for &(score, relevant) in self.pairs.iter().flatten() {
            out.extend_from_slice(&score.to_le_bytes());
            out.push(relevant as u8);
        }
        out
    }

    /// Reads what [`EvaluatorPart::to_bytes`] wrote; `None` when `bytes` is not such a part.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let mut at = 0usize;
        let mut take = |n: usize| {
            let slice = bytes.get(at..at.checked_add(n)?)?;
            at += n;
            Some(slice)
        };
        let mut header = [0usize; 5];
        for h in &mut header {
            *h = u64::from_le_bytes(take(8)?.try_into().ok()?) as usize;
        }
        let [skipped, rows, slots, items, pairs] = header;
        let rows = take(rows.checked_mul(8)?)?
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
        let mut covered = Vec::with_capacity(slots);
        for _ in 0..slots {
            covered.push(take(items)?.iter().map(|&b| b != 0).collect());
        }
        let pairs = if pairs == usize::MAX {
            None
        } else {
            Some(
                take(pairs.checked_mul(5)?)?
                    .chunks_exact(5)
                    .map(|b| {
                        let score = f32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
                        (score, b[4] != 0)
                    })
                    .collect(),
            )
        };
        (at == bytes.len()).then_some(Self {
            skipped,
            rows,
            covered,
            pairs,
        })
    }
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
            recorded: None,
            asked: None,
            negatives: Tally::default(),
            groups: Vec::new(),
        })
    }

    /// Breaks the metrics down by the user groups `names` ([`MetricsReport::groups`]): each
    /// user is added to one of them with [`RankingEvaluator::add_user_in`].
    pub fn grouped(mut self, names: Vec<String>) -> Self {
        let n = self.ks.len();
        let empty = GroupSums {
            hit: vec![0.0; n],
            recall: vec![0.0; n],
            ndcg: vec![0.0; n],
            ..GroupSums::default()
        };
        self.groups = names.into_iter().map(|g| (g, empty.clone())).collect();
        self
    }

    /// Counts the users given fewer than `negatives` negatives (a sampled protocol's users with
    /// fewer unseen items), for [`MetricsReport::negatives`].
    pub fn asking(mut self, negatives: usize) -> Self {
        self.asked = Some(negatives);
        self
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
        self.add_user_in(None, items, scores, relevant);
    }

    /// [`RankingEvaluator::add_user`] for a user of group `group` (an index into the names
    /// given to [`RankingEvaluator::grouped`]; `None` for a user of no group).
    ///
    /// # Panics
    /// As [`RankingEvaluator::add_user`], and for a group the evaluator was not given.
    pub fn add_user_in(
        &mut self,
        group: Option<usize>,
        items: &[u32],
        scores: &[f32],
        relevant: &[bool],
    ) {
        assert!(items.len() == scores.len() && scores.len() == relevant.len());
        assert!(group.is_none_or(|g| g < self.groups.len()), "a known group");
        let ranks = relevant_ranks(scores, relevant);
        if ranks.is_empty() {
            self.skipped += 1;
            return;
        }
        let mut row = Vec::with_capacity(self.row_width());
        for &k in &self.ks {
            let v = cutoff_values(&ranks, k);
            row.extend([
                v.hit,
                v.precision,
                v.recall,
                v.recall_min,
                v.ndcg,
                v.average_precision,
            ]);
        }
        row.push(reciprocal_rank(&ranks));
        row.push(roc_auc(scores, relevant).unwrap_or(f64::NAN));
        row.push((items.len() - ranks.len()) as f64);
        row.push(items.len() as f64);
        row.push(group.map_or(-1.0, |g| g as f64));
        self.add_row(&row);
        if let Some(rows) = &mut self.recorded {
            rows.extend_from_slice(&row);
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

    /// Values per user in a row: six per cut-off, the reciprocal rank, the ROC-AUC (NaN when
    /// undefined), the number of negatives and of candidates, and the user's group (-1 for
    /// none).
    fn row_width(&self) -> usize {
        6 * self.ks.len() + 5
    }

    /// Adds one user's values to the sums, in the order they were added: a merged evaluation
    /// adds the same numbers in the same order as one that saw every user.
    fn add_row(&mut self, row: &[f64]) {
        self.users += 1;
        for slot in 0..self.ks.len() {
            let v = &row[6 * slot..6 * slot + 6];
            self.hit[slot] += v[0];
            self.precision[slot] += v[1];
            self.recall[slot] += v[2];
            self.recall_min[slot] += v[3];
            self.ndcg[slot] += v[4];
            self.map[slot] += v[5];
        }
        let tail = 6 * self.ks.len();
        self.mrr += row[tail];
        let auc = row[tail + 1];
        if !auc.is_nan() {
            self.auc_sum += auc;
            self.auc_users += 1;
        }
        self.negatives
            .add(row[tail + 2] as usize, row[tail + 3] as usize, self.asked);
        if row[tail + 4] >= 0.0 {
            let sums = &mut self.groups[row[tail + 4] as usize].1;
            sums.users += 1;
            for slot in 0..self.ks.len() {
                sums.hit[slot] += row[6 * slot];
                sums.recall[slot] += row[6 * slot + 2];
                sums.ndcg[slot] += row[6 * slot + 4];
            }
            sums.mrr += row[tail];
            if !auc.is_nan() {
                sums.auc_sum += auc;
                sums.auc_users += 1;
            }
        }
    }

    /// Keeps every user's values, so that [`RankingEvaluator::into_part`] can hand them to
    /// another evaluator (one shard of a distributed evaluation).
    pub fn recording(mut self) -> Self {
        self.recorded = Some(Vec::new());
        self
    }

    /// What this evaluator saw, for [`RankingEvaluator::absorb`].
    ///
    /// # Panics
    /// When the evaluator was not made [`RankingEvaluator::recording`].
    pub fn into_part(self) -> EvaluatorPart {
        EvaluatorPart {
            skipped: self.skipped,
            rows: self.recorded.expect("a recording evaluator"),
            covered: self.covered,
            pairs: self.pairs,
        }
    }

    /// Adds the users of `part` after those added so far. Parts taken from consecutive shards
    /// of the users, absorbed in order, give exactly the report of one evaluator that added
    /// every user (the same sums in the same order).
    ///
    /// # Panics
    /// When `part` came from an evaluator with other cut-offs or another catalogue.
    pub fn absorb(&mut self, part: EvaluatorPart) {
        let width = self.row_width();
        assert_eq!(part.rows.len() % width, 0, "a part of the same cut-offs");
        assert_eq!(part.covered.len(), self.covered.len(), "the same cut-offs");
        self.skipped += part.skipped;
        for row in part.rows.chunks(width) {
            self.add_row(row);
        }
        for (mine, theirs) in self.covered.iter_mut().zip(&part.covered) {
            assert_eq!(mine.len(), theirs.len(), "the same catalogue");
            for (m, t) in mine.iter_mut().zip(theirs) {
                *m |= *t;
            }
        }
        self.pairs = match (self.pairs.take(), part.pairs) {
            (Some(mut mine), Some(theirs)) if mine.len() + theirs.len() <= GLOBAL_AUC_MAX_PAIRS => {
                mine.extend(theirs);
                Some(mine)
            }
            _ => None,
        };
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
        let negatives = self.negatives.counts(self.asked);
        let groups = self
            .groups
            .iter()
            .map(|(group, sums)| sums.report(group, &self.ks))
            .collect();
        MetricsReport {
            protocol: protocol.into(),
            users: self.users,
            skipped_users: self.skipped,
            metrics,
            warnings: warnings(self.users, negatives.as_ref(), &self.ks),
            negatives,
            groups,
        }
    }
}

impl GroupSums {
    /// The group's averages (none for a group without users: a JSON file cannot hold NaN).
    fn report(&self, group: &str, ks: &[usize]) -> GroupReport {
        let n = self.users as f64;
        let mut metrics = Vec::new();
        if self.users == 0 {
            return GroupReport {
                group: group.into(),
                users: 0,
                metrics,
            };
        }
        for (slot, &k) in ks.iter().enumerate() {
            metrics.push((at_k(HR, k), self.hit[slot] / n));
            metrics.push((at_k(NDCG, k), self.ndcg[slot] / n));
            metrics.push((at_k(RECALL, k), self.recall[slot] / n));
        }
        metrics.push((MRR.into(), self.mrr / n));
        let auc = if self.auc_users == 0 {
            f64::NAN
        } else {
            self.auc_sum / self.auc_users as f64
        };
        metrics.push((AUC_USER.into(), auc));
        GroupReport {
            group: group.into(),
            users: self.users,
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
    /// The negatives the users of a ranking got (`None` for rating prediction, and in reports
    /// written before ember counted them).
    #[serde(default)]
    pub negatives: Option<NegativeCounts>,
    /// What makes these figures say less than they seem to: too few users, fewer negatives than
    /// asked for, figures every model gets by construction. Empty when nothing does.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The metrics by group of users, when the evaluation broke them down (test evaluations:
    /// by training activity); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupReport>,
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
        negatives: None,
        warnings: warnings(users, None, &[]),
        groups: Vec::new(),
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

    /// Users of varied lists (one with no relevant item), scored so that ties, misses and
    /// hits at every cut-off occur.
    fn users() -> Vec<(Vec<u32>, Vec<f32>, Vec<bool>)> {
        (0..7u32)
            .map(|u| {
                let items: Vec<u32> = (0..6).map(|j| (u * 3 + j) % 9).collect();
                let scores = (0..6)
                    .map(|j| ((u * 7 + j * 5) % 11) as f32 / 10.0 + 0.1 / (u + 1) as f32)
                    .collect();
                let relevant = (0..6).map(|j| u != 4 && (j + u) % 4 == 0).collect();
                (items, scores, relevant)
            })
            .collect()
    }

    #[test]
    fn parts_absorbed_in_order_give_the_whole_evaluation_bit_for_bit() {
        let users = users();
        // Each user has 6 candidates, 0 to 2 of them held out: asked for 5, some are short.
        let mut whole = RankingEvaluator::new(&[1, 3, 5], 9).unwrap().asking(5);
        for (items, scores, relevant) in &users {
            whole.add_user(items, scores, relevant);
        }
        let whole = whole.finish("p");
        assert!(
            whole
                .negatives
                .as_ref()
                .is_some_and(|n| n.fewer_than_asked > 0)
        );
        for cut in [0, 2, 5, 7] {
            let mut merged = RankingEvaluator::new(&[1, 3, 5], 9).unwrap().asking(5);
            for shard in [&users[..cut], &users[cut..]] {
                let mut part = RankingEvaluator::new(&[1, 3, 5], 9).unwrap().recording();
                for (items, scores, relevant) in shard {
                    part.add_user(items, scores, relevant);
                }
                let bytes = part.into_part().to_bytes();
                merged.absorb(EvaluatorPart::from_bytes(&bytes).expect("a part"));
            }
            let merged = merged.finish("p");
            assert_eq!(merged.users, whole.users);
            assert_eq!(merged.skipped_users, 1);
            assert_eq!(merged.negatives, whole.negatives, "split at {cut}");
            assert_eq!(merged.warnings, whole.warnings, "split at {cut}");
            for ((name, a), (_, b)) in merged.metrics.iter().zip(&whole.metrics) {
                assert_eq!(a.to_bits(), b.to_bits(), "{name} split at {cut}");
            }
        }
    }

    /// Each group averages its own users; the whole report is unchanged by the breakdown, and
    /// a merged evaluation breaks down as the whole one.
    #[test]
    fn groups_average_their_own_users() {
        // Three candidates each: a hit at rank 1 (NDCG 1), at rank 2 (NDCG 1/log2(3)), a
        // miss at rank 3 (HR@2 0, NDCG@2 0).
        let rank_1 = ([0, 1, 2], [0.9, 0.5, 0.1], [true, false, false]);
        let rank_2 = ([0, 1, 2], [0.5, 0.9, 0.1], [true, false, false]);
        let rank_3 = ([0, 1, 2], [0.1, 0.9, 0.5], [true, false, false]);
        let users = [(0, rank_1), (1, rank_2), (1, rank_3), (0, rank_3)];
        let names = vec!["light".to_string(), "heavy".to_string(), "none".to_string()];
        let mut grouped = RankingEvaluator::new(&[2], 3)
            .unwrap()
            .grouped(names.clone());
        let mut plain = RankingEvaluator::new(&[2], 3).unwrap();
        for (g, (items, scores, relevant)) in &users {
            grouped.add_user_in(Some(*g), items, scores, relevant);
            plain.add_user(items, scores, relevant);
        }
        let report = grouped.finish("p");
        assert_eq!(report.metrics, plain.finish("p").metrics);
        let get = |g: usize, name: &str| {
            let group = &report.groups[g];
            group.metrics.iter().find(|(n, _)| n == name).unwrap().1
        };
        assert_eq!(report.groups[0].group, "light");
        assert_eq!(report.groups[0].users, 2);
        assert_eq!(get(0, "HR@2"), 0.5);
        assert_eq!(get(0, "NDCG@2"), 0.5);
        assert_eq!(get(0, "MRR"), (1.0 + 1.0 / 3.0) / 2.0);
        assert_eq!(get(1, "HR@2"), 0.5);
        assert!((get(1, "NDCG@2") - 0.5 / 3f64.log2()).abs() < 1e-12);
        // ROC-AUC: rank 1 → 1, rank 2 → 0.5, rank 3 → 0.
        assert_eq!(get(1, "AUC(user)"), 0.25);
        assert_eq!(report.groups[2].users, 0);
        assert!(report.groups[2].metrics.is_empty());

        let mut merged = RankingEvaluator::new(&[2], 3)
            .unwrap()
            .grouped(names.clone());
        for shard in [&users[..1], &users[1..]] {
            let mut part = RankingEvaluator::new(&[2], 3)
                .unwrap()
                .grouped(names.clone())
                .recording();
            for (g, (items, scores, relevant)) in shard {
                part.add_user_in(Some(*g), items, scores, relevant);
            }
            merged.absorb(EvaluatorPart::from_bytes(&part.into_part().to_bytes()).unwrap());
        }
        let merged = merged.finish("p");
        assert_eq!(merged.groups[..2], report.groups[..2]);
    }

    #[test]
    fn a_truncated_part_is_refused() {
        let mut part = RankingEvaluator::new(&[2], 3).unwrap().recording();
        part.add_user(&[0, 1, 2], &[0.9, 0.1, 0.5], &[true, false, false]);
        let bytes = part.into_part().to_bytes();
        assert!(EvaluatorPart::from_bytes(&bytes).is_some());
        assert!(EvaluatorPart::from_bytes(&bytes[..bytes.len() - 1]).is_none());
        assert!(EvaluatorPart::from_bytes(&[bytes.clone(), vec![0]].concat()).is_none());
    }
}
