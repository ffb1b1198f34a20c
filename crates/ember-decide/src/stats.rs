//! The statistics behind the evidence: the normal distribution, intervals for proportions and
//! their difference and ratio, the two-proportion z-test and its sample size.
//!
//! - Wilson's score interval for a proportion (Wilson 1927): centre `(p̂ + z²/2n) / (1 + z²/n)`,
//!   half-width `z / (1 + z²/n) · √(p̂(1 − p̂)/n + z²/4n²)`.
//! - The difference `p₁ − p₂`: Newcombe's hybrid score interval (Newcombe, "Interval
//!   estimation for the difference between independent proportions", Statistics in Medicine
//!   1998, method 10), from the Wilson intervals `(l₁, u₁)` and `(l₂, u₂)`:
//!   `[d − √((p̂₁ − l₁)² + (u₂ − p̂₂)²), d + √((u₁ − p̂₁)² + (p̂₂ − l₂)²)]`.
//! - The ratio `p₁ / p₂`: the log-ratio (delta method, Katz et al. 1978) interval
//!   `exp(ln(p̂₁/p̂₂) ± z √(1/x₁ − 1/n₁ + 1/x₂ − 1/n₂))`, undefined with no conversions in a
//!   group.
//! - The two-proportion z-test with the pooled proportion `p̄ = (x₁ + x₂)/(n₁ + n₂)`:
//!   `z = (p̂₁ − p̂₂) / √(p̄(1 − p̄)(1/n₁ + 1/n₂))`, two-sided `p = erfc(|z|/√2)`.
//! - Its sample size per group (Fleiss, Levin & Paik, "Statistical Methods for Rates and
//!   Proportions", 3rd ed., 2003, eq. 4.14 without continuity correction):
//!   `n = (z_{1−α/2} √(2 p̄ q̄) + z_{1−β} √(p₁q₁ + p₂q₂))² / (p₁ − p₂)²`, `p̄ = (p₁ + p₂)/2`.

/// A two-sided interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

impl Interval {
    /// Whether `x` lies within the bounds.
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// `Φ(x)`, the standard normal distribution function.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// `Φ⁻¹(p)` for `p` in (0, 1): Acklam's rational approximation, refined by one Halley step
/// on `Φ` (accurate to about 1e-15).
pub fn normal_quantile(p: f64) -> f64 {
    assert!(p > 0.0 && p < 1.0, "a probability strictly between 0 and 1");
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let low = 0.02425;
    let x = if p < low {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - low {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// `z_{1−α/2}`: the two-sided critical value of level `alpha`.
pub fn two_sided_z(alpha: f64) -> f64 {
    normal_quantile(1.0 - alpha / 2.0)
}

/// Wilson's score interval for `x` successes in `n` trials at critical value `z` (`n = 0`:
/// the whole of [0, 1]).
pub fn wilson(x: u64, n: u64, z: f64) -> Interval {
    if n == 0 {
        return Interval {
            low: 0.0,
            high: 1.0,
        };
    }
    let (n, p) = (n as f64, x as f64 / n as f64);
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = z / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Interval {
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    }
}

/// Newcombe's hybrid score interval for `x₁/n₁ − x₂/n₂`.
pub fn newcombe_difference(x1: u64, n1: u64, x2: u64, n2: u64, z: f64) -> Interval {
    let (p1, p2) = (proportion(x1, n1), proportion(x2, n2));
    let (w1, w2) = (wilson(x1, n1, z), wilson(x2, n2, z));
    let d = p1 - p2;
    Interval {
        low: d - ((p1 - w1.low).powi(2) + (w2.high - p2).powi(2)).sqrt(),
        high: d + ((w1.high - p1).powi(2) + (p2 - w2.low).powi(2)).sqrt(),
    }
}

/// The log-ratio interval for `(x₁/n₁) / (x₂/n₂)`; `None` when either group has no success.
pub fn ratio_interval(x1: u64, n1: u64, x2: u64, n2: u64, z: f64) -> Option<Interval> {
    if x1 == 0 || x2 == 0 {
        return None;
    }
    let ratio = proportion(x1, n1) / proportion(x2, n2);
    let (x1, n1, x2, n2) = (x1 as f64, n1 as f64, x2 as f64, n2 as f64);
    let se = (1.0 / x1 - 1.0 / n1 + 1.0 / x2 - 1.0 / n2).max(0.0).sqrt();
    Some(Interval {
        low: ratio * (-z * se).exp(),
        high: ratio * (z * se).exp(),
    })
}

/// The two-proportion z-test of `x₁/n₁` against `x₂/n₂` with the pooled proportion: `(z,
/// two-sided p-value)`; `(0, 1)` when the pooled variance is 0.
pub fn two_proportion_z_test(x1: u64, n1: u64, x2: u64, n2: u64) -> (f64, f64) {
    if n1 == 0 || n2 == 0 {
        return (0.0, 1.0);
    }
    let pooled = (x1 + x2) as f64 / (n1 + n2) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
    if se == 0.0 {
        return (0.0, 1.0);
    }
    let z = (proportion(x1, n1) - proportion(x2, n2)) / se;
    (z, libm::erfc(z.abs() / std::f64::consts::SQRT_2))
}

/// Customers needed per group for a two-sided two-proportion z-test of level `alpha` to
/// detect rates `p1` against `p2` with probability `power` (Fleiss, Levin & Paik eq. 4.14,
/// rounded up). Rates must lie in (0, 1) and differ.
pub fn group_size(p1: f64, p2: f64, alpha: f64, power: f64) -> usize {
    let (za, zb) = (two_sided_z(alpha), normal_quantile(power));
    let mean = (p1 + p2) / 2.0;
    let a = za * (2.0 * mean * (1.0 - mean)).sqrt();
    let b = zb * (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt();
    ((a + b).powi(2) / (p1 - p2).powi(2)).ceil() as usize
}

/// `x / n`, 0 for no trials.
pub fn proportion(x: u64, n: u64) -> f64 {
    if n == 0 { 0.0 } else { x as f64 / n as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn normal_quantiles_match_the_tables() {
        assert!((two_sided_z(0.05) - 1.959_963_984_540_054).abs() < 1e-12);
        assert!((normal_quantile(0.8) - 0.841_621_233_572_914_3).abs() < 1e-12);
        assert!((normal_quantile(0.001) + 3.090_232_306_167_813_5).abs() < 1e-10);
        assert!((normal_cdf(1.0) - 0.841_344_746_068_542_9).abs() < 1e-14);
    }

    /// Fleiss, Levin & Paik's eq. 4.14 for p₁ = 0.10, p₂ = 0.15, α = 0.05 two-sided, power
    /// 0.8: `(1.96 √(2 · 0.125 · 0.875) + 0.8416 √(0.09 + 0.1275))² / 0.05² = 685.6`, so 686
    /// per group (the value G*Power and R's `power.prop.test` give, 686).
    #[test]
    fn group_size_matches_the_textbook() {
        assert_eq!(group_size(0.10, 0.15, 0.05, 0.8), 686);
        assert_eq!(group_size(0.15, 0.10, 0.05, 0.8), 686);
        // Halving the difference roughly quadruples the size.
        let n = group_size(0.10, 0.125, 0.05, 0.8);
        assert!((2_500..2_600).contains(&n), "{n}");
    }

    /// Wilson's interval for 81 of 263 (Newcombe 1998, table II's example): 0.2553 to 0.3662.
    /// Newcombe's method 10 for 56/70 − 48/80 (his example (a)): 0.0524 to 0.3339.
    #[test]
    fn intervals_match_newcombes_examples() {
        let w = wilson(81, 263, two_sided_z(0.05));
        assert!(
            (w.low - 0.2553).abs() < 5e-4 && (w.high - 0.3662).abs() < 5e-4,
            "{w:?}"
        );
        let d = newcombe_difference(56, 70, 48, 80, two_sided_z(0.05));
        assert!(
            (d.low - 0.0524).abs() < 5e-4 && (d.high - 0.3339).abs() < 5e-4,
            "{d:?}"
        );
    }

    /// Over 1,000 seeded trials of a campaign whose true rates are 15% (target, 2,000
    /// customers) and 10% (control, 1,000), the 95% intervals cover the true difference (0.05)
    /// and ratio (1.5) in 95% ± 2% of the trials; the z-test rejects the false null in about
    /// its power (the difference is large: nearly always).
    #[test]
    fn intervals_cover_the_true_lift_95_percent_of_the_time() {
        let (p_target, p_control, n_target, n_control) = (0.15, 0.10, 2_000u64, 1_000u64);
        let z = two_sided_z(0.05);
        let mut rng = Rng::new(20240601);
        let mut draw = |p: f64, n: u64| (0..n).filter(|_| rng.uniform() < p).count() as u64;
        let (mut difference, mut ratio, mut rejected) = (0, 0, 0);
        let trials = 1_000;
        for _ in 0..trials {
            let (xt, xc) = (draw(p_target, n_target), draw(p_control, n_control));
            difference +=
                usize::from(newcombe_difference(xt, n_target, xc, n_control, z).contains(0.05));
            ratio += usize::from(
                ratio_interval(xt, n_target, xc, n_control, z).is_some_and(|r| r.contains(1.5)),
            );
            rejected += usize::from(two_proportion_z_test(xt, n_target, xc, n_control).1 < 0.05);
        }
        for (name, covered) in [("difference", difference), ("ratio", ratio)] {
            let share = covered as f64 / trials as f64;
            assert!((0.93..=0.97).contains(&share), "{name}: {share}");
        }
        assert!(rejected as f64 / trials as f64 > 0.95, "{rejected}");
    }

    #[test]
    fn the_z_test_matches_a_hand_computed_case() {
        // 60/400 against 40/400: pooled 0.125, se = √(0.125 · 0.875 · 2/400) = 0.023385,
        // z = 0.05 / 0.023385 = 2.1381, p = 0.0325.
        let (z, p) = two_proportion_z_test(60, 400, 40, 400);
        assert!((z - 2.1381).abs() < 1e-3, "{z}");
        assert!((p - 0.0325).abs() < 1e-3, "{p}");
        assert_eq!(two_proportion_z_test(0, 10, 0, 10), (0.0, 1.0));
    }
}
