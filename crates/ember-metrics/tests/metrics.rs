//! Metric values checked against hand-worked cases and against scikit-learn.

use ember_metrics::ranking::{cutoff_values, relevant_ranks, roc_auc, top_k_indices};
use ember_metrics::{
    MetricsError, NegativeCounts, NegativeSampling, Protocol, RankingEvaluator, rating_report,
};

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

#[test]
fn hand_worked_single_user() {
    // Candidates in score order; the relevant ones sit at ranks 2 and 4.
    let scores = [0.9, 0.8, 0.7, 0.6, 0.5];
    let relevant = [false, true, false, true, false];
    let ranks = relevant_ranks(&scores, &relevant);
    assert_eq!(ranks, vec![2, 4]);
    let v = cutoff_values(&ranks, 3);
    close(v.hit, 1.0);
    close(v.precision, 1.0 / 3.0);
    close(v.recall, 0.5);
    // DCG = 1/log2(3); IDCG = 1 + 1/log2(3).
    close(v.ndcg, (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2()));
    // AP@3 = (1/2) / min(2, 3).
    close(v.average_precision, 0.25);
    let v5 = cutoff_values(&ranks, 5);
    close(v5.average_precision, (1.0 / 2.0 + 2.0 / 4.0) / 2.0);
    close(v5.precision, 2.0 / 5.0);
    // Recall normalised by min(k, relevant): at k = 1 nothing is found (rank 2 > 1), at k = 3
    // one of min(3, 2) = 2, at k = 5 both.
    close(cutoff_values(&ranks, 1).recall_min, 0.0);
    close(v.recall_min, 0.5);
    close(v5.recall_min, 1.0);
    // With more relevant items than k, the plain recall cannot reach 1 but this one can:
    // ranks 1 and 2 of 4 relevant at k = 2 → recall 2/4, recall_min 2/min(2, 4) = 1.
    let many = cutoff_values(&[1, 2, 7, 9], 2);
    close(many.recall, 0.5);
    close(many.recall_min, 1.0);
}

#[test]
fn ties_rank_the_relevant_item_last() {
    // A constant scorer must get the worst rank, not the best.
    let ranks = relevant_ranks(&[0.5, 0.5, 0.5, 0.5], &[true, false, false, false]);
    assert_eq!(ranks, vec![4]);
    // Equal to one negative, above another.
    let ranks = relevant_ranks(&[0.1, 0.7, 0.7, 0.9], &[false, false, true, false]);
    assert_eq!(ranks, vec![3]);
    // NaN ranks below every number.
    let ranks = relevant_ranks(&[f32::NAN, 0.1, 0.2], &[true, false, false]);
    assert_eq!(ranks, vec![3]);
}

#[test]
fn result_does_not_depend_on_candidate_order() {
    let items: Vec<u32> = (0..8).collect();
    let scores = [0.3, 0.9, 0.3, 0.1, 0.3, 0.8, 0.2, 0.3];
    let relevant = [true, false, false, true, false, false, true, false];
    let mut a = RankingEvaluator::new(&[1, 3, 5], 8).unwrap();
    a.add_user(&items, &scores, &relevant);
    let perm = [7, 3, 5, 0, 6, 2, 1, 4];
    let p_items: Vec<u32> = perm.iter().map(|&i| items[i]).collect();
    let p_scores: Vec<f32> = perm.iter().map(|&i| scores[i]).collect();
    let p_rel: Vec<bool> = perm.iter().map(|&i| relevant[i]).collect();
    let mut b = RankingEvaluator::new(&[1, 3, 5], 8).unwrap();
    b.add_user(&p_items, &p_scores, &p_rel);
    assert_eq!(a.finish("x"), b.finish("x"));
}

// Reference values from scikit-learn 1.x (distinct scores, so its tie handling does not matter):
//
//   rng = np.random.RandomState(7); scores = np.round(rng.rand(12), 4)
//   rel = np.array([1,0,0,1,0,0,0,1,0,0,0,0])
//   roc_auc_score(rel, scores)               -> 0.22222222222222224
//   ndcg_score([rel], [scores], k=5)         -> 0.20210734650054754
//   ndcg_score([rel], [scores], k=10)        -> 0.20210734650054754
//   precision@5 = rel[np.argsort(-scores)[:5]].sum()/5 -> 0.2 ; recall@5 -> 1/3
//   s2 = [0.5,0.5,0.2,0.9,0.5,0.1]; r2 = [1,0,1,0,0,1]
//   roc_auc_score(r2, s2)                    -> 0.11111111111111112
//   roc_auc_score(concat(rel, r2), concat(scores, s2)) -> 0.16666666666666666
const SCORES: [f32; 12] = [
    0.0763, 0.7799, 0.4384, 0.7235, 0.978, 0.5385, 0.5011, 0.0721, 0.2684, 0.4999, 0.6792, 0.8037,
];
const RELEVANT: [bool; 12] = [
    true, false, false, true, false, false, false, true, false, false, false, false,
];

#[test]
fn matches_scikit_learn() {
    let ranks = relevant_ranks(&SCORES, &RELEVANT);
    assert_eq!(ranks, vec![4, 11, 12]);
    let v3 = cutoff_values(&ranks, 3);
    close(v3.ndcg, 0.0);
    let v5 = cutoff_values(&ranks, 5);
    assert!((v5.ndcg - 0.20210734650054754).abs() < 1e-9);
    close(v5.precision, 0.2);
    close(v5.recall, 1.0 / 3.0);
    let v10 = cutoff_values(&ranks, 10);
    assert!((v10.ndcg - 0.20210734650054754).abs() < 1e-9);
    assert!((roc_auc(&SCORES, &RELEVANT).unwrap() - 0.22222222222222224).abs() < 1e-9);
    let s2 = [0.5, 0.5, 0.2, 0.9, 0.5, 0.1];
    let r2 = [true, false, true, false, false, true];
    assert!((roc_auc(&s2, &r2).unwrap() - 0.11111111111111112).abs() < 1e-9);
}

#[test]
fn evaluator_averages_users_and_pools_global_auc() {
    let mut ev = RankingEvaluator::new(&[5, 10], 12).unwrap();
    let items: Vec<u32> = (0..12).collect();
    ev.add_user(&items, &SCORES, &RELEVANT);
    let s2 = [0.5, 0.5, 0.2, 0.9, 0.5, 0.1];
    let r2 = [true, false, true, false, false, true];
    ev.add_user(&[0, 1, 2, 3, 4, 5], &s2, &r2);
    // A user with nothing held out is skipped, not counted as a zero.
    ev.add_user(&[0, 1], &[0.1, 0.2], &[false, false]);
    let report = ev.finish("test protocol");
    assert_eq!(report.users, 2);
    assert_eq!(report.skipped_users, 1);
    assert_eq!(report.protocol, "test protocol");
    // User 2's relevant ranks under pessimistic ties: 0.5 ties with two negatives -> 4; 0.2 -> 5; 0.1 -> 6.
    let user2 = cutoff_values(&[4, 5, 6], 5);
    let user1 = cutoff_values(&[4, 11, 12], 5);
    close(
        report.get("NDCG@5").unwrap(),
        (user1.ndcg + user2.ndcg) / 2.0,
    );
    close(report.get("HR@5").unwrap(), 1.0);
    close(report.get("MRR").unwrap(), (1.0 / 4.0 + 1.0 / 4.0) / 2.0);
    close(
        report.get("AUC(user)").unwrap(),
        (0.22222222222222224 + 0.11111111111111112) / 2.0,
    );
    close(report.get("AUC(global)").unwrap(), 0.16666666666666666);
    // Top-5 of user 1 covers items {4, 11, 1, 3, 10}; user 2 adds {3, 0, 1, 4, 2} (ties by id).
    close(report.get("Coverage@5").unwrap(), 7.0 / 12.0);
}

#[test]
fn top_k_breaks_ties_by_item_id() {
    let top = top_k_indices(&[0.5, 0.9, 0.5, 0.5], &[30, 10, 20, 5], 3);
    assert_eq!(top, vec![1, 3, 2]);
}

#[test]
fn top_k_equals_a_full_sort() {
    // Scores with many ties and some NaN, against sorting every candidate.
    let mut state = 7u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    for n in [0usize, 1, 5, 40, 300] {
        let scores: Vec<f32> = (0..n)
            .map(|_| match next() % 10 {
                0 => f32::NAN,
                r => (r % 4) as f32 * 0.5,
            })
            .collect();
        // Ids repeat (as a list with a repeated item can), so equal keys occur too.
        let mut ids: Vec<u32> = (0..n as u32).map(|i| i * 7 % 101).collect();
        ids.reverse();
        let mut sorted: Vec<usize> = (0..n).collect();
        sorted.sort_by(|&a, &b| {
            let by_score = match (scores[a].is_nan(), scores[b].is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                (false, false) => scores[b].partial_cmp(&scores[a]).unwrap(),
            };
            by_score.then(ids[a].cmp(&ids[b]))
        });
        for k in [0usize, 1, 3, 10, 500] {
            let want: Vec<usize> = sorted.iter().copied().take(k).collect();
            assert_eq!(top_k_indices(&scores, &ids, k), want, "n {n}, k {k}");
        }
    }
}

#[test]
fn bad_cutoffs_are_rejected() {
    assert_eq!(
        RankingEvaluator::new(&[10, 0], 5).unwrap_err(),
        MetricsError::ZeroCutoff
    );
    assert_eq!(
        RankingEvaluator::new(&[], 5).unwrap_err(),
        MetricsError::NoCutoffs
    );
}

/// Three users asked for 4 negatives: one got them, two had fewer unseen items (3 and 2).
fn three_users_asked_for_four() -> ember_metrics::MetricsReport {
    let mut ev = RankingEvaluator::new(&[1, 5], 50).unwrap().asking(4);
    let scores = [0.9, 0.8, 0.7, 0.6, 0.5];
    ev.add_user(
        &[0, 1, 2, 3, 4],
        &scores,
        &[true, false, false, false, false],
    );
    ev.add_user(
        &[5, 6, 7, 8, 9],
        &scores,
        &[false, true, true, false, false],
    );
    ev.add_user(&[10, 11, 12], &scores[..3], &[false, true, false]);
    ev.finish("nominal")
}

#[test]
fn negatives_fewer_than_asked_are_counted() {
    let report = three_users_asked_for_four();
    // Negatives 4, 3, 2: mean 3; the two short ones 3 and 2 (mean 2.5); at most 5 candidates.
    assert_eq!(
        report.negatives,
        Some(NegativeCounts {
            asked: Some(4),
            fewer_than_asked: 2,
            min: 2,
            max: 4,
            mean: 3.0,
            fewer_max: Some(3),
            fewer_mean: Some(2.5),
            most_candidates: 5,
        })
    );
    let uniform = Protocol::Sampled {
        negatives: 4,
        sampling: NegativeSampling::Uniform,
    };
    assert_eq!(
        uniform.label(&report),
        "sampled: held-out items vs 4 uniform negatives (fewer for 2 of 3 users: 2 to 3, mean 2.5)"
    );
    assert_eq!(
        report.warnings,
        [
            "only 3 users scored: these figures have no statistical weight (fewer than 30 users)",
            "2 of 3 users had fewer than 4 items they never interacted with: ranked against 2 to 3 negatives (mean 2.5) instead of 4, which makes their lists easier",
            "every user had at most 5 candidates: HR, Precision and Recall at k = 5 are the same for every model (all candidates are in the top k)",
        ]
    );
    // Another protocol's label is its name: only a sampled protocol asks for a number.
    assert_eq!(
        Protocol::FullRanking.label(&report),
        Protocol::FullRanking.to_string()
    );
}

#[test]
fn every_user_short_names_the_range_drawn() {
    let popularity = Protocol::Sampled {
        negatives: 9,
        sampling: NegativeSampling::Popularity,
    };
    // Asked for 9: all three users are short.
    let mut ev = RankingEvaluator::new(&[1], 50).unwrap().asking(9);
    let scores = [0.9, 0.8, 0.7, 0.6, 0.5];
    ev.add_user(
        &[0, 1, 2, 3, 4],
        &scores,
        &[true, false, false, false, false],
    );
    ev.add_user(&[5, 6, 7], &scores[..3], &[false, true, false]);
    let report = ev.finish("nominal");
    assert_eq!(
        popularity.label(&report),
        "sampled: held-out items vs 2 to 4 popularity-weighted negatives (9 asked for: no user had that many unseen items; mean 3.0)"
    );
    assert_eq!(
        report.warnings[1],
        "every user had fewer than 9 items they never interacted with: ranked against 2 to 4 negatives (mean 3.0) instead of 9, which makes their lists easier"
    );
}

#[test]
fn one_user_with_no_negative_gets_every_figure_by_construction() {
    let mut ev = RankingEvaluator::new(&[5], 10).unwrap().asking(3);
    ev.add_user(&[7], &[0.1], &[true]);
    let report = ev.finish("nominal");
    close(report.get("HR@5").unwrap(), 1.0);
    close(report.get("NDCG@5").unwrap(), 1.0);
    let n = report.negatives.as_ref().unwrap();
    assert_eq!(
        (n.min, n.max, n.fewer_than_asked, n.most_candidates),
        (0, 0, 1, 1)
    );
    assert_eq!(
        Protocol::Sampled {
            negatives: 3,
            sampling: NegativeSampling::Uniform
        }
        .label(&report),
        "sampled: held-out items vs 0 uniform negatives (3 asked for: no user had that many unseen items)"
    );
    assert_eq!(
        report.warnings,
        [
            "only 1 user scored: these figures have no statistical weight (fewer than 30 users)",
            "every user had fewer than 3 items they never interacted with: ranked against 0 negatives (mean 0.0) instead of 3, which makes their lists easier",
            "no user had a candidate besides their held-out items: every model gets these figures by construction",
        ]
    );
}

#[test]
fn thirty_users_with_their_negatives_raise_no_warning() {
    // Thirty users, each one held-out item and two negatives, at k = 2 (below 3 candidates).
    let thirty = |asked: usize| {
        let mut ev = RankingEvaluator::new(&[2], 100).unwrap().asking(asked);
        for u in 0..30u32 {
            ev.add_user(
                &[u, u + 30, u + 60],
                &[0.3, 0.2, 0.1],
                &[true, false, false],
            );
        }
        ev.finish("nominal")
    };
    let report = thirty(2);
    assert_eq!(report.negatives.as_ref().unwrap().fewer_than_asked, 0);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    // Asked for 3, every one of them got 2.
    assert_eq!(thirty(3).negatives.unwrap().fewer_than_asked, 30);
    // Twenty-nine users are too few; a rating report counts its users the same way.
    let ratings = rating_report([(4.0, 5.0)], 29, "ratings");
    assert_eq!(
        ratings.warnings,
        ["only 29 users scored: these figures have no statistical weight (fewer than 30 users)"]
    );
    assert_eq!(ratings.negatives, None);
    assert!(
        rating_report([(4.0, 5.0)], 30, "ratings")
            .warnings
            .is_empty()
    );
}
