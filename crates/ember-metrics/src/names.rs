//! Metric names, spelled in this one place: the evaluators report under them, configs pick a
//! monitor among them, and the command line shows them.

/// Hit rate at k: `HR@10`.
pub const HR: &str = "HR";
/// Normalised discounted cumulative gain at k.
pub const NDCG: &str = "NDCG";
/// Precision at k.
pub const PRECISION: &str = "Precision";
/// Recall at k (hits over held-out items).
pub const RECALL: &str = "Recall";
/// Name prefix of recall normalised by `min(k, held-out items)` (the Mult-VAE paper's
/// Recall@k), reported beside the plain `Recall@k`: `Recall(min(k,n))@20`.
pub const RECALL_MIN_PREFIX: &str = "Recall(min(k,n))@";
/// Mean average precision at k.
pub const MAP: &str = "MAP";
/// Share of the catalogue in some user's top k.
pub const COVERAGE: &str = "Coverage";
/// Mean reciprocal rank.
pub const MRR: &str = "MRR";
/// ROC-AUC per user, averaged.
pub const AUC_USER: &str = "AUC(user)";
/// ROC-AUC over every scored pair pooled (test only).
pub const AUC_GLOBAL: &str = "AUC(global)";
/// Root mean squared error of predicted ratings.
pub const RMSE: &str = "RMSE";
/// Mean absolute error of predicted ratings.
pub const MAE: &str = "MAE";

/// The metrics with a cut-off, in the order reports list them.
pub const AT_K: [&str; 6] = [HR, NDCG, PRECISION, RECALL, MAP, COVERAGE];

/// `name@k`, e.g. `NDCG@10`.
pub fn at_k(name: &str, k: usize) -> String {
    format!("{name}@{k}")
}

/// The recall normalised by `min(k, held-out items)` at `k`.
pub fn recall_min(k: usize) -> String {
    format!("{RECALL_MIN_PREFIX}{k}")
}

/// The ranking metrics a run with cut-offs `ks` computes at every validation, which can choose
/// the epoch (`AUC(global)` is computed on test only: it keeps every scored pair).
pub fn monitorable(ks: &[usize]) -> Vec<String> {
    let mut names = vec![MRR.to_string(), AUC_USER.to_string()];
    for &k in ks {
        names.extend(AT_K.iter().map(|m| at_k(m, k)));
        names.push(recall_min(k));
    }
    names
}

/// The metrics of rating prediction.
pub const RATING_METRICS: [&str; 2] = [RMSE, MAE];

/// Whether a larger value of metric `name` is better (all but the rating errors).
pub fn higher_is_better(name: &str) -> bool {
    !RATING_METRICS.contains(&name)
}
