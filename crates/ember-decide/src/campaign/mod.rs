//! Campaigns: who gets an item's campaign, what it is expected to bring, and what it brought.
//!
//! 1. [`select_audience`]: the customers who do not have the item (nor are excluded), ranked
//!    by the model's score for it; the best `budget` of them form the audience, and a seeded
//!    random share of the audience (default 10%) is held out as the control group, so that
//!    target and control are alike but for the contact.
//! 2. [`power_check`]: how many customers each group needs to detect the expected lift, and a
//!    warning when a group is smaller.
//! 3. [`evaluate_audience`]: on held-out interactions the model never saw (who took the item
//!    afterwards), the conversions, rate and value of contacting the best `budget` customers,
//!    against contacting `budget` random ones and against contacting everyone, and the whole
//!    cumulative-gains and lift curves as data.
//! 4. [`measure`]: once the campaign ran, from the audience file and the outcomes, the
//!    conversion of target against control, the absolute and relative lift with their 95%
//!    intervals, and the p-value ([`crate::stats`] has each method's formula).
//!
//! Each step has its file (`select`, `power`, `evaluate`, `measure`); this module holds what
//! they share (the [`Arm`] a member is in, the test's level) and re-exports their items.

mod evaluate;
mod measure;
mod power;
mod select;

pub use evaluate::{
    ConversionValue, CurvePoint, Evaluation, EvaluationOptions, HeldOutRow, Outcome,
    evaluate_audience, evaluate_ranking, read_customer_values, read_held_out,
};
pub use measure::{
    ArmResult, AudienceRow, Measurement, OutcomeRow, audience_key_kind, measure, read_audience,
    read_outcomes,
};
pub use power::{PowerCheck, power_check};
pub use select::{Audience, AudienceOptions, Member, select_audience};

/// The share of the audience held out as the control group when not said otherwise.
pub const DEFAULT_CONTROL_SHARE: f64 = 0.1;
/// The level of the power calculation and of the measurement's test: 5%, two-sided.
pub const ALPHA: f64 = 0.05;
/// The power the group sizes are computed for.
pub const POWER: f64 = 0.8;

/// Which arm of the campaign's experiment a member is in: contacted or held out (the
/// audience file's `group` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arm {
    /// Contacted.
    Target,
    /// Held out: not contacted, to measure what would have happened anyway.
    Control,
}

impl Arm {
    /// As the audience file writes it: `target` or `control`.
    pub fn as_str(self) -> &'static str {
        match self {
            Arm::Target => "target",
            Arm::Control => "control",
        }
    }
}
