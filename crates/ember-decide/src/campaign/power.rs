//! Step 2: whether the groups are large enough to detect the expected lift.

use super::{ALPHA, POWER};
use crate::DecideError;
use crate::stats::group_size;

/// Whether the groups are large enough to detect the expected lift.
#[derive(Debug, Clone, PartialEq)]
pub struct PowerCheck {
    /// The conversion rate expected without contact (the control's).
    pub baseline: f64,
    /// The conversion rate expected with contact (the target's).
    pub expected: f64,
    /// Customers each group needs ([`crate::stats::group_size`] at [`ALPHA`] two-sided,
    /// power [`POWER`]).
    pub per_group: usize,
    /// The target group's size.
    pub target: usize,
    /// The control group's size.
    pub control: usize,
    /// Set when a group is smaller than `per_group`: what to change, or, when the eligible
    /// customers cannot make two such groups, what the best split can detect.
    pub warning: Option<String>,
    /// The smallest rise over `baseline` (in rate) that a 50/50 split of every eligible
    /// customer detects, when even that split is too small for `expected`.
    pub detectable: Option<f64>,
}

/// Checks groups of `target` and `control` customers, drawn from `eligible`, against the size
/// needed to tell a `baseline` conversion rate from an `expected` one (both in (0, 1),
/// different). The size is for equal groups; a larger target group lowers the control's need
/// somewhat, so the warning errs on the safe side. When the eligible customers cannot fill two
/// groups of that size, no budget or control share can: the warning says so, and what the best
/// split (half and half of everyone eligible) can detect.
pub fn power_check(
    target: usize,
    control: usize,
    baseline: f64,
    expected: f64,
    eligible: usize,
) -> Result<PowerCheck, DecideError> {
    for (name, rate) in [("baseline", baseline), ("expected", expected)] {
        if !(rate > 0.0 && rate < 1.0) {
            return Err(DecideError::Invalid(format!(
                "the `{name}` conversion rate must lie strictly between 0 and 1, got {rate}"
            )));
        }
    }
    if baseline == expected {
        return Err(DecideError::Invalid(
            "the `expected` conversion rate must differ from the `baseline` one".into(),
        ));
    }
    let per_group = group_size(baseline, expected, ALPHA, POWER);
    let small: Vec<String> = [("control", control), ("target", target)]
        .iter()
        .filter(|(_, n)| *n < per_group)
        .map(|(name, n)| format!("the {name} group holds {n}"))
        .collect();
    let telling = format!(
        "telling {:.1}% from {:.1}% (95% confidence, 80% power) needs {per_group} customers per \
         group",
        baseline * 100.0,
        expected * 100.0
    );
    let feasible = 2 * per_group <= eligible;
    let detectable = (!feasible).then(|| detectable_rise(baseline, eligible / 2));
    let warning = match (small.is_empty(), detectable) {
        (true, _) => None,
        (false, Some(rise)) => Some(format!(
            "{}; {telling}, and only {eligible} customers are eligible: no budget or control \
             share can reach it. With every eligible customer split half and half, the test \
             detects a rise from {:.1}% to {:.1}% (+{:.1} points) or more",
            small.join(" and "),
            baseline * 100.0,
            (baseline + rise) * 100.0,
            rise * 100.0
        )),
        (false, None) => Some(format!(
            "{}; {telling}: raise --budget or --control, or expect a larger lift",
            small.join(" and ")
        )),
    };
    Ok(PowerCheck {
        baseline,
        expected,
        per_group,
        target,
        control,
        warning,
        detectable,
    })
}

/// The smallest rise `d` over `baseline` that groups of `per_group` customers detect
/// ([`group_size`]`(baseline, baseline + d) ≤ per_group`), by bisection; `1 − baseline` when
/// not even that does.
fn detectable_rise(baseline: f64, per_group: usize) -> f64 {
    let (mut low, mut high) = (0.0, 1.0 - baseline);
    let needs = |d: f64| group_size(baseline, (baseline + d).min(1.0 - 1e-12), ALPHA, POWER);
    if per_group == 0 || needs(high) > per_group {
        return high;
    }
    for _ in 0..60 {
        let mid = (low + high) / 2.0;
        if needs(mid) <= per_group {
            high = mid;
        } else {
            low = mid;
        }
    }
    high
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_warns_when_the_control_group_is_too_small() {
        let check = power_check(5_000, 500, 0.10, 0.15, 100_000).unwrap();
        assert_eq!(check.per_group, 686);
        let warning = check.warning.unwrap();
        assert!(
            warning.starts_with("the control group holds 500;"),
            "{warning}"
        );
        assert!(
            warning.contains("needs 686 customers per group"),
            "{warning}"
        );
        assert!(warning.ends_with("raise --budget or --control, or expect a larger lift"));
        assert_eq!(check.detectable, None);
        assert_eq!(
            power_check(1_000, 700, 0.10, 0.15, 100_000)
                .unwrap()
                .warning,
            None
        );
        let err = power_check(10, 10, 0.1, 1.5, 100).unwrap_err().to_string();
        assert!(err.contains("`expected` conversion rate"), "{err}");
    }

    /// 1,281 eligible customers cannot make two groups of 13,809 (2% against 2.5%): the warning
    /// says so and what a 50/50 split of all 1,281 detects, whatever the budget.
    #[test]
    fn an_infeasible_test_says_what_the_best_split_detects() {
        let check = power_check(1_000, 111, 0.02, 0.025, 1_281).unwrap();
        let rise = check.detectable.unwrap();
        // 640 per group detect this rise and no smaller one.
        assert!(group_size(0.02, 0.02 + rise, ALPHA, POWER) <= 640);
        assert!(group_size(0.02, 0.02 + rise - 1e-4, ALPHA, POWER) > 640);
        let warning = check.warning.unwrap();
        assert!(
            warning.contains(
                "only 1281 customers are eligible: no budget or control share can reach it"
            ),
            "{warning}"
        );
        assert!(
            warning.contains(&format!(
                "to {:.1}% (+{:.1} points) or more",
                (0.02 + rise) * 100.0,
                rise * 100.0
            )),
            "{warning}"
        );
        assert!(!warning.contains("raise"), "{warning}");
    }
}
