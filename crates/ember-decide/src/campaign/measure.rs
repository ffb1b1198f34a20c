//! Step 4: what a campaign did, target against control.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::{ALPHA, Arm};
use crate::stats::{
    Interval, newcombe_difference, proportion, ratio_interval, two_proportion_z_test, two_sided_z,
    wilson,
};
use crate::table::CsvReader;
use crate::{DecideError, Key, KeyKind};

/// One row of an audience file as [`measure`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct AudienceRow {
    /// External customer key.
    pub customer: Key,
    /// Target or control.
    pub arm: Arm,
}

/// The columns an audience file may hold beside `customer` and `group`.
const AUDIENCE_OPTIONAL: &[&str] = &["score", "rank", "because"];

/// The kind of the customer keys of an audience file, which holds no model to say: integers
/// when every customer is written as one, as ember writes an integer key (no sign, no leading
/// zero), else strings, so that `000123` stays a string and the outcomes are read alike.
pub fn audience_key_kind(path: &Path) -> Result<KeyKind, DecideError> {
    let mut reader = CsvReader::open(path, &["customer", "group"], AUDIENCE_OPTIONAL)?;
    while let Some(record) = reader.next_record() {
        let record = record?;
        let text = record.text("customer")?;
        let integer = Key::parse(KeyKind::Integer, text).is_some_and(|k| k.to_string() == text);
        if !integer {
            return Ok(KeyKind::String);
        }
    }
    Ok(KeyKind::Integer)
}

/// Reads an audience file (`customer` and `group` are needed; `score`, `rank` and `because`
/// may be there), its customers keys of `kind` (see [`audience_key_kind`]). A customer listed
/// twice is an error.
pub fn read_audience(path: &Path, kind: KeyKind) -> Result<Vec<AudienceRow>, DecideError> {
    let mut reader = CsvReader::open(path, &["customer", "group"], AUDIENCE_OPTIONAL)?;
    let (mut rows, mut seen) = (Vec::new(), HashSet::new());
    while let Some(record) = reader.next_record() {
        let record = record?;
        let customer = record.key("customer", kind, "customers")?;
        let arm = match record.text("group")? {
            "target" => Arm::Target,
            "control" => Arm::Control,
            other => {
                return Err(record.error(
                    "group",
                    format!("expected target or control, got `{other}`"),
                ));
            }
        };
        if !seen.insert(customer.clone()) {
            return Err(record.error("customer", format!("customer {customer} is listed twice")));
        }
        rows.push(AudienceRow { customer, arm });
    }
    Ok(rows)
}

/// What a customer did after the campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeRow {
    /// External customer key.
    pub customer: Key,
    /// Whether they converted.
    pub converted: bool,
    /// What the conversion was worth, when recorded.
    pub value: Option<f64>,
}

/// Reads outcomes: `customer` (keys of `kind`, the audience's), `converted` (1/0, true/false,
/// yes/no), and optionally `value`.
pub fn read_outcomes(path: &Path, kind: KeyKind) -> Result<Vec<OutcomeRow>, DecideError> {
    let mut reader = CsvReader::open(path, &["customer", "converted"], &["value"])?;
    let mut rows = Vec::new();
    // A customer's first row: whether they converted, and its line.
    let mut first: HashMap<Key, (bool, usize)> = HashMap::new();
    while let Some(record) = reader.next_record() {
        let record = record?;
        let row = OutcomeRow {
            customer: record.key("customer", kind, "customers")?,
            converted: record.flag("converted")?,
            value: record.number_opt("value")?,
        };
        let (converted, line) = *first
            .entry(row.customer.clone())
            .or_insert((row.converted, record.line()));
        if converted != row.converted {
            let said = |c: bool| if c { "converted" } else { "not converted" };
            return Err(record.error(
                "converted",
                format!(
                    "customer {} is {} here but {} at line {line}: a customer's rows must agree \
                     (several rows of one customer may add values, all converted or all not)",
                    row.customer,
                    said(row.converted),
                    said(converted)
                ),
            ));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// One arm's observed result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmResult {
    /// Customers in the group.
    pub customers: usize,
    /// Of them, those who converted.
    pub conversions: usize,
    /// `conversions / customers`.
    pub rate: f64,
    /// Wilson's 95% interval of the rate.
    pub interval: Interval,
    /// The recorded value of the group's conversions.
    pub value: f64,
}

/// What a campaign did: target against control.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The contacted group.
    pub target: ArmResult,
    /// The held-out group.
    pub control: ArmResult,
    /// Absolute lift: `target.rate − control.rate`.
    pub difference: f64,
    /// Its 95% interval (Newcombe's hybrid score interval).
    pub difference_interval: Interval,
    /// Relative lift: `target.rate / control.rate − 1`; `None` without control conversions.
    pub relative_lift: Option<f64>,
    /// Its 95% interval (the log-ratio interval, less 1); `None` without conversions in a
    /// group.
    pub relative_interval: Option<Interval>,
    /// The two-proportion z statistic (pooled).
    pub z: f64,
    /// Its two-sided p-value.
    pub p_value: f64,
    /// Conversions the contact added: `difference × target.customers`.
    pub incremental_conversions: f64,
    /// Value the contact added: the difference in value per customer × `target.customers`.
    pub incremental_value: f64,
    /// Audience members with no outcome row, counted as not converted.
    pub without_outcome: usize,
    /// Outcome rows of customers outside the audience, ignored.
    pub outside_audience: usize,
    /// Audience members with more than one outcome row (converted if one says so, values
    /// summed): said rather than taken silently.
    pub repeated: usize,
    /// Whether any audience member's outcome row gave a value (otherwise there is no value to
    /// show).
    pub values_given: bool,
}

/// Measures a campaign: each audience member's outcome (several rows of a customer: converted
/// if any says so, values summed; no row: not converted), target against control.
pub fn measure(
    audience: &[AudienceRow],
    outcomes: &[OutcomeRow],
) -> Result<Measurement, DecideError> {
    let members: HashMap<&Key, Arm> = audience.iter().map(|r| (&r.customer, r.arm)).collect();
    let mut results: HashMap<&Key, (bool, f64, usize)> = HashMap::new();
    let (mut outside_audience, mut values_given) = (0, false);
    for row in outcomes {
        if !members.contains_key(&row.customer) {
            outside_audience += 1;
            continue;
        }
        let entry = results.entry(&row.customer).or_insert((false, 0.0, 0));
        entry.0 |= row.converted;
        entry.1 += row.value.unwrap_or(0.0);
        entry.2 += 1;
        values_given |= row.value.is_some();
    }
    let tally = |arm: Arm| {
        let (mut customers, mut conversions, mut value) = (0usize, 0usize, 0.0);
        for row in audience.iter().filter(|r| r.arm == arm) {
            customers += 1;
            if let Some(&(converted, v, _)) = results.get(&row.customer) {
                conversions += usize::from(converted);
                value += v;
            }
        }
        (customers, conversions, value)
    };
    let z95 = two_sided_z(ALPHA);
    let result = |(customers, conversions, value): (usize, usize, f64)| ArmResult {
        customers,
        conversions,
        rate: proportion(conversions as u64, customers as u64),
        interval: wilson(conversions as u64, customers as u64, z95),
        value,
    };
    let (target, control) = (result(tally(Arm::Target)), result(tally(Arm::Control)));
    for (name, g) in [("target", &target), ("control", &control)] {
        if g.customers == 0 {
            return Err(DecideError::Invalid(format!(
                "the audience has no {name} group: a campaign is measured against its control"
            )));
        }
    }
    let (xt, nt, xc, nc) = (
        target.conversions as u64,
        target.customers as u64,
        control.conversions as u64,
        control.customers as u64,
    );
    let (z, p_value) = two_proportion_z_test(xt, nt, xc, nc);
    let difference = target.rate - control.rate;
    let per_customer = |g: &ArmResult| g.value / g.customers as f64;
    Ok(Measurement {
        difference,
        difference_interval: newcombe_difference(xt, nt, xc, nc, z95),
        relative_lift: (xc > 0).then(|| target.rate / control.rate - 1.0),
        relative_interval: ratio_interval(xt, nt, xc, nc, z95).map(|r| Interval {
            low: r.low - 1.0,
            high: r.high - 1.0,
        }),
        z,
        p_value,
        incremental_conversions: difference * target.customers as f64,
        incremental_value: (per_customer(&target) - per_customer(&control))
            * target.customers as f64,
        without_outcome: audience.len() - results.len(),
        outside_audience,
        repeated: results.values().filter(|r| r.2 > 1).count(),
        values_given,
        target,
        control,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 400 target customers with 60 conversions against 400 control with 40: the z-test and
    /// Newcombe's interval as computed by hand in `stats`; customers without an outcome count
    /// as not converted, and rows outside the audience are ignored.
    #[test]
    fn measure_compares_target_with_control() {
        let mut audience = Vec::new();
        let mut outcomes = Vec::new();
        for c in 0..800i64 {
            let arm = if c < 400 { Arm::Target } else { Arm::Control };
            audience.push(AudienceRow {
                customer: Key::from(c),
                arm,
            });
            let converted = if c < 400 { c < 60 } else { c < 440 };
            // Non-converters of the target group report nothing.
            if converted || c >= 400 {
                outcomes.push(OutcomeRow {
                    customer: Key::from(c),
                    converted,
                    value: converted.then_some(5.0),
                });
            }
        }
        outcomes.push(OutcomeRow {
            customer: Key::from(9_999),
            converted: true,
            value: None,
        });
        let m = measure(&audience, &outcomes).unwrap();
        assert_eq!((m.target.conversions, m.control.conversions), (60, 40));
        assert!((m.difference - 0.05).abs() < 1e-12);
        assert!((m.z - 2.1381).abs() < 1e-3 && (m.p_value - 0.0325).abs() < 1e-3);
        assert!(m.difference_interval.contains(0.05) && m.difference_interval.low > 0.0);
        assert!((m.relative_lift.unwrap() - 0.5).abs() < 1e-12);
        let r = m.relative_interval.unwrap();
        assert!(r.low < 0.5 && r.high > 0.5);
        assert!((m.incremental_conversions - 20.0).abs() < 1e-9);
        assert!((m.incremental_value - 100.0).abs() < 1e-9);
        assert_eq!((m.without_outcome, m.outside_audience), (340, 1));
        assert_eq!((m.repeated, m.values_given), (0, true));
        // A customer reported twice is counted once, and said; without values none is shown.
        let mut twice: Vec<OutcomeRow> = outcomes
            .iter()
            .map(|o| OutcomeRow {
                value: None,
                ..o.clone()
            })
            .collect();
        twice.push(twice[0].clone());
        let again = measure(&audience, &twice).unwrap();
        assert_eq!(
            (again.target.conversions, again.repeated, again.values_given),
            (60, 1, false)
        );
        let only_target: Vec<AudienceRow> = audience[..400].to_vec();
        let err = measure(&only_target, &outcomes).unwrap_err().to_string();
        assert!(err.contains("no control group"), "{err}");
    }
}
