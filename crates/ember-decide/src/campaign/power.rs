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
    /// Set when a group is smaller than `per_group`: what to change.
    pub warning: Option<String>,
}

/// Checks groups of `target` and `control` customers against the size needed to tell a
/// `baseline` conversion rate from an `expected` one (both in (0, 1), different). The size is
/// for equal groups; a larger target group lowers the control's need somewhat, so the warning
/// errs on the safe side.
pub fn power_check(
    target: usize,
    control: usize,
    baseline: f64,
    expected: f64,
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
    let warning = (!small.is_empty()).then(|| {
        format!(
            "{}; telling {:.1}% from {:.1}% (α = {ALPHA} two-sided, power {POWER}) needs {per_group} \
             customers per group: raise `budget` or `control_share`, or expect a larger lift",
            small.join(" and "),
            baseline * 100.0,
            expected * 100.0
        )
    });
    Ok(PowerCheck {
        baseline,
        expected,
        per_group,
        target,
        control,
        warning,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_warns_when_the_control_group_is_too_small() {
        let check = power_check(5_000, 500, 0.10, 0.15).unwrap();
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
        assert_eq!(power_check(1_000, 700, 0.10, 0.15).unwrap().warning, None);
        let err = power_check(10, 10, 0.1, 1.5).unwrap_err().to_string();
        assert!(err.contains("`expected` conversion rate"), "{err}");
    }
}
