//! What a ranking evaluation actually scored: how many negatives each user got against how many
//! were asked for, and the warnings a report carries when its figures say less than they seem to.

use serde::{Deserialize, Serialize};

/// Below this many scored users a report warns that its figures have no statistical weight:
/// with fewer, one user moves HR@k by more than three points.
pub const MIN_USERS: usize = 30;

/// The negatives (candidates that are not held out) the scored users of a ranking evaluation
/// got, written into `metrics.json` beside the figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NegativeCounts {
    /// Negatives asked for per user by a sampled protocol; `None` when the protocol ranks every
    /// item or reads a fixed list.
    pub asked: Option<usize>,
    /// Users given fewer negatives than asked for: they had fewer items they never interacted
    /// with than `asked`.
    pub fewer_than_asked: usize,
    /// Fewest negatives a user got.
    pub min: usize,
    /// Most negatives a user got.
    pub max: usize,
    /// Mean negatives per user.
    pub mean: f64,
    /// Most negatives among the users given fewer than asked (`None` when none was).
    pub fewer_max: Option<usize>,
    /// Mean negatives of the users given fewer than asked (`None` when none was).
    pub fewer_mean: Option<f64>,
    /// Most candidates (held-out items and negatives) one user had.
    pub most_candidates: usize,
}

/// Running sums behind [`NegativeCounts`], one user at a time.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    users: usize,
    min: usize,
    max: usize,
    sum: u64,
    fewer: usize,
    fewer_sum: u64,
    fewer_max: usize,
    most_candidates: usize,
}

impl Tally {
    /// Counts one user who got `negatives` negatives among `candidates` candidates.
    pub(crate) fn add(&mut self, negatives: usize, candidates: usize, asked: Option<usize>) {
        self.min = if self.users == 0 {
            negatives
        } else {
            self.min.min(negatives)
        };
        self.users += 1;
        self.max = self.max.max(negatives);
        self.sum += negatives as u64;
        self.most_candidates = self.most_candidates.max(candidates);
        if asked.is_some_and(|a| negatives < a) {
            self.fewer += 1;
            self.fewer_sum += negatives as u64;
            self.fewer_max = self.fewer_max.max(negatives);
        }
    }

    /// The counts, `None` when no user was counted.
    pub(crate) fn counts(&self, asked: Option<usize>) -> Option<NegativeCounts> {
        (self.users > 0).then(|| NegativeCounts {
            asked,
            fewer_than_asked: self.fewer,
            min: self.min,
            max: self.max,
            mean: self.sum as f64 / self.users as f64,
            fewer_max: (self.fewer > 0).then_some(self.fewer_max),
            fewer_mean: (self.fewer > 0).then(|| self.fewer_sum as f64 / self.fewer as f64),
            most_candidates: self.most_candidates,
        })
    }
}

/// `a` or `a to b`.
pub(crate) fn range(a: usize, b: usize) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a} to {b}")
    }
}

/// "negative" when the range `a` to `b` is exactly one, "negatives" otherwise.
pub(crate) fn negatives_noun(a: usize, b: usize) -> &'static str {
    if a == 1 && b == 1 {
        "negative"
    } else {
        "negatives"
    }
}

/// The warnings of a report over `users` scored users at cut-offs `ks`, with `negatives` for a
/// ranking: figures from too few users, negatives fewer than asked, and figures every model
/// shares by construction (every candidate fits in the top k).
pub(crate) fn warnings(
    users: usize,
    negatives: Option<&NegativeCounts>,
    ks: &[usize],
) -> Vec<String> {
    let mut out = Vec::new();
    if users == 0 {
        out.push("no user had a held-out item: nothing was scored".to_string());
        return out;
    }
    if users < MIN_USERS {
        let who = if users == 1 { "user" } else { "users" };
        out.push(format!(
            "only {users} {who} scored: these figures have no statistical weight (fewer than {MIN_USERS} users)"
        ));
    }
    let Some(n) = negatives else {
        return out;
    };
    if let (Some(asked), Some(fewer_max), Some(fewer_mean)) = (n.asked, n.fewer_max, n.fewer_mean) {
        let who = if n.fewer_than_asked == users {
            "every user".to_string()
        } else {
            format!("{} of {users} users", n.fewer_than_asked)
        };
        out.push(format!(
            "{who} had fewer than {asked} items they never interacted with: ranked against {} {} (mean {fewer_mean:.1}) instead of {asked}, which makes their lists easier",
            range(n.min, fewer_max),
            negatives_noun(n.min, fewer_max)
        ));
    }
    if n.max == 0 {
        out.push(
            "no user had a candidate besides their held-out items: every model gets these figures by construction"
                .to_string(),
        );
        return out;
    }
    let fixed: Vec<String> = ks
        .iter()
        .filter(|&&k| k >= n.most_candidates)
        .map(|k| k.to_string())
        .collect();
    if !fixed.is_empty() {
        out.push(format!(
            "every user had at most {} candidates: HR, Precision and Recall at k = {} are the same for every model (all candidates are in the top k)",
            n.most_candidates,
            fixed.join(", ")
        ));
    }
    out
}
