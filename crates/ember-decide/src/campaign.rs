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

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::rng::Rng;
use crate::stats::{
    Interval, group_size, newcombe_difference, proportion, ratio_interval, two_proportion_z_test,
    two_sided_z, wilson,
};
use crate::table::{AtomicFile, CsvReader};
use crate::{Because, DecideError, ExportedModel, Known, Options, because_field, number};

/// The share of the audience held out as the control group when not said otherwise.
pub const DEFAULT_CONTROL_SHARE: f64 = 0.1;
/// The level of the power calculation and of the measurement's test: 5%, two-sided.
pub const ALPHA: f64 = 0.05;
/// The power the group sizes are computed for.
pub const POWER: f64 = 0.8;

/// How an audience is chosen.
#[derive(Debug, Clone)]
pub struct AudienceOptions {
    /// Customers in the audience (target and control together).
    pub budget: usize,
    /// The share of the audience held out as control, in [0, 1).
    pub control_share: f64,
    /// The seed of the control group's draw.
    pub seed: u64,
    /// Customers never to contact (opted out).
    pub exclude: Vec<i64>,
    /// Whether customers who already have the item are left out.
    pub known: Known,
    /// "Because of" items per member (0: none).
    pub explain: usize,
}

impl AudienceOptions {
    /// An audience of `budget` customers with the default control share, seed 0, no
    /// exclusions, owners left out and no explanations.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            control_share: DEFAULT_CONTROL_SHARE,
            seed: 0,
            exclude: Vec::new(),
            known: Known::Exclude,
            explain: 0,
        }
    }
}

/// Which group a member is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// Contacted.
    Target,
    /// Held out: not contacted, to measure what would have happened anyway.
    Control,
}

impl Group {
    /// As the audience file writes it: `target` or `control`.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Target => "target",
            Group::Control => "control",
        }
    }
}

/// One customer of an audience.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// External customer id.
    pub customer: i64,
    /// The model's score for the item.
    pub score: f32,
    /// Rank by score among the eligible customers (1 = best).
    pub rank: usize,
    /// Target or control.
    pub group: Group,
    /// The customer's own items that weigh most in the score.
    pub because: Vec<Because>,
}

/// An item's campaign audience, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Audience {
    /// External item id.
    pub item: i64,
    /// The members, by rank.
    pub members: Vec<Member>,
    /// Customers who could have been chosen (not having the item, not excluded).
    pub eligible: usize,
}

impl Audience {
    /// Members of `group`.
    pub fn count(&self, group: Group) -> usize {
        self.members.iter().filter(|m| m.group == group).count()
    }

    /// Writes the audience as CSV (`customer,score,rank,group`, and `because` when the
    /// members carry explanations) under a temporary name, then renames it into place.
    pub fn write_csv(&self, path: &Path) -> Result<(), DecideError> {
        let explain = self.members.iter().any(|m| !m.because.is_empty());
        let mut file = AtomicFile::create(path)?;
        let mut header = vec!["customer", "score", "rank", "group"];
        if explain {
            header.push("because");
        }
        file.write_row(&header)?;
        for m in &self.members {
            let mut row = vec![
                m.customer.to_string(),
                number(m.score as f64),
                m.rank.to_string(),
                m.group.as_str().to_string(),
            ];
            if explain {
                row.push(because_field(&m.because));
            }
            file.write_row(&row)?;
        }
        file.commit()
    }
}

/// The audience of `item` (see the module docs): the `budget` best-scored customers who do
/// not have it, `round(control_share × audience)` of them drawn at random (seeded) into the
/// control group.
pub fn select_audience(
    model: &ExportedModel,
    item: i64,
    options: &AudienceOptions,
) -> Result<Audience, DecideError> {
    if options.budget == 0 {
        return Err(DecideError::Invalid("`budget` must be at least 1".into()));
    }
    if !(0.0..1.0).contains(&options.control_share) {
        return Err(DecideError::Invalid(format!(
            "`control_share` must lie in [0, 1), got {}",
            options.control_share
        )));
    }
    let users = model.user_ids().len();
    let query = Options {
        exclude: &options.exclude,
        known: options.known,
        explain: 0,
    };
    // Every eligible customer, to count them; only the budget's are kept.
    let mut ranked = model.audience_for(item, users, &query)?;
    let eligible = ranked.len();
    ranked.truncate(options.budget);
    let control_size = (options.control_share * ranked.len() as f64).round() as usize;
    let mut groups = vec![Group::Target; ranked.len()];
    for k in Rng::new(options.seed).sample(ranked.len(), control_size) {
        groups[k] = Group::Control;
    }
    let members = ranked
        .into_iter()
        .zip(groups)
        .enumerate()
        .map(|(k, (r, group))| {
            let because = if options.explain > 0 {
                model.explain(r.id, &[item], options.explain)?.remove(0)
            } else {
                Vec::new()
            };
            Ok(Member {
                customer: r.id,
                score: r.score,
                rank: k + 1,
                group,
                because,
            })
        })
        .collect::<Result<_, DecideError>>()?;
    Ok(Audience {
        item,
        members,
        eligible,
    })
}

/// One row of an audience file as [`measure`] reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudienceRow {
    /// External customer id.
    pub customer: i64,
    /// Target or control.
    pub group: Group,
}

/// Reads an audience file (`customer` and `group` are needed; `score`, `rank` and `because`
/// may be there). A customer listed twice is an error.
pub fn read_audience(path: &Path) -> Result<Vec<AudienceRow>, DecideError> {
    let mut reader = CsvReader::open(path, &["customer", "group"], &["score", "rank", "because"])?;
    let (mut rows, mut seen) = (Vec::new(), HashSet::new());
    while let Some(record) = reader.next_record() {
        let record = record?;
        let customer = record.id("customer")?;
        let group = match record.text("group")? {
            "target" => Group::Target,
            "control" => Group::Control,
            other => {
                return Err(record.error(
                    "group",
                    format!("expected target or control, got `{other}`"),
                ));
            }
        };
        if !seen.insert(customer) {
            return Err(record.error("customer", format!("customer {customer} is listed twice")));
        }
        rows.push(AudienceRow { customer, group });
    }
    Ok(rows)
}

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

/// A held-out interaction: a customer took an item after the model's data ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeldOutRow {
    /// External customer id.
    pub customer: i64,
    /// External item id.
    pub item: i64,
    /// What the interaction was worth, when recorded.
    pub value: Option<f64>,
}

/// Reads held-out interactions: `customer`, `item`, and optionally `value`.
pub fn read_held_out(path: &Path) -> Result<Vec<HeldOutRow>, DecideError> {
    let mut reader = CsvReader::open(path, &["customer", "item"], &["value"])?;
    let mut rows = Vec::new();
    while let Some(record) = reader.next_record() {
        let record = record?;
        rows.push(HeldOutRow {
            customer: record.id("customer")?,
            item: record.id("item")?,
            value: record.number_opt("value")?,
        });
    }
    Ok(rows)
}

/// Reads a value per customer, `customer,value` (e.g. each customer's expected revenue), for
/// [`ConversionValue::PerCustomer`]. A customer listed twice is an error naming the line.
pub fn read_customer_values(path: &Path) -> Result<HashMap<i64, f64>, DecideError> {
    let mut reader = CsvReader::open(path, &["customer", "value"], &[])?;
    let mut values = HashMap::new();
    while let Some(record) = reader.next_record() {
        let record = record?;
        let customer = record.id("customer")?;
        let value = record
            .number_opt("value")?
            .ok_or_else(|| record.error("value", "empty, expected a number"))?;
        if values.insert(customer, value).is_some() {
            return Err(record.error("customer", format!("customer {customer} is listed twice")));
        }
    }
    Ok(values)
}

/// What a conversion is worth.
#[derive(Debug, Clone, PartialEq)]
pub enum ConversionValue {
    /// The same value per conversion (the item's margin).
    PerConversion(f64),
    /// A value per customer (e.g. their expected revenue), 0 for a customer not listed.
    PerCustomer(HashMap<i64, f64>),
    /// The held-out rows' own `value` (summed over a customer's rows of the item).
    Recorded,
}

/// How an audience is evaluated on held-out interactions.
#[derive(Debug, Clone)]
pub struct EvaluationOptions {
    /// Customers contacted.
    pub budget: usize,
    /// What a conversion is worth.
    pub value: ConversionValue,
    /// What one contact costs (0: free), subtracted in the net values.
    pub cost_per_contact: f64,
    /// Points of the gains and lift curves, evenly spaced in customers contacted (the
    /// budget's point is added).
    pub points: usize,
    /// Customers never to contact.
    pub exclude: Vec<i64>,
    /// Whether customers who already have the item are left out (as the audience does).
    pub known: Known,
}

impl EvaluationOptions {
    /// An evaluation at `budget` with conversions worth `value` each, free contacts, 100
    /// curve points, no exclusions, owners left out.
    pub fn new(budget: usize, value: f64) -> Self {
        Self {
            budget,
            value: ConversionValue::PerConversion(value),
            cost_per_contact: 0.0,
            points: 100,
            exclude: Vec::new(),
            known: Known::Exclude,
        }
    }
}

/// The result of contacting some customers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Customers contacted.
    pub contacted: usize,
    /// Conversions among them (expected, for random targeting).
    pub conversions: f64,
    /// `conversions / contacted`.
    pub rate: f64,
    /// The conversions' value.
    pub value: f64,
    /// `value − contacted × cost_per_contact`.
    pub net_value: f64,
}

/// One point of the cumulative gains and lift curves: the best `contacted` customers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    /// Customers contacted (the best by score).
    pub contacted: usize,
    /// `contacted / eligible`.
    pub share_contacted: f64,
    /// Conversions among them.
    pub conversions: usize,
    /// Cumulative gain: the share of every conversion they hold.
    pub gain: f64,
    /// Their conversion rate over the eligible customers' (1: no better than random).
    pub lift: f64,
    /// The conversions' value.
    pub value: f64,
    /// `value − contacted × cost_per_contact`.
    pub net_value: f64,
}

/// What targeting by the model is worth on held-out interactions.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Customers who could be contacted.
    pub eligible: usize,
    /// Of them, those who converted (took the item in the held-out data).
    pub converters: usize,
    /// The best `budget` customers by score.
    pub at_budget: Outcome,
    /// `budget` customers drawn at random (expected values).
    pub random: Outcome,
    /// Every eligible customer.
    pub everyone: Outcome,
    /// `at_budget.conversions / random.conversions` (0 when nobody converted).
    pub lift: f64,
    /// `at_budget.conversions / everyone.conversions`: the share of all conversions reached.
    pub captured: f64,
    /// The curves, by customers contacted.
    pub curve: Vec<CurvePoint>,
}

/// Evaluates the audience of `item` on `held_out`: the eligible customers are ranked as
/// [`select_audience`] ranks them, and a customer converts when the held-out data holds them
/// taking `item`. Held-out rows of other items, and of customers not eligible (who already
/// have the item, are excluded, or are unknown to the model), are not counted.
pub fn evaluate_audience(
    model: &ExportedModel,
    item: i64,
    held_out: &[HeldOutRow],
    options: &EvaluationOptions,
) -> Result<Evaluation, DecideError> {
    let query = Options {
        exclude: &options.exclude,
        known: options.known,
        explain: 0,
    };
    let ranking: Vec<i64> = model
        .audience_for(item, model.user_ids().len(), &query)?
        .into_iter()
        .map(|r| r.id)
        .collect();
    let mut values: HashMap<i64, f64> = HashMap::new();
    for row in held_out.iter().filter(|r| r.item == item) {
        let value = match &options.value {
            ConversionValue::PerConversion(v) => *v,
            ConversionValue::PerCustomer(map) => map.get(&row.customer).copied().unwrap_or(0.0),
            ConversionValue::Recorded => row.value.ok_or_else(|| {
                DecideError::Invalid(format!(
                    "held-out interaction of customer {} with item {item} has no `value`, \
                     which the recorded values need",
                    row.customer
                ))
            })?,
        };
        match (&options.value, values.get_mut(&row.customer)) {
            (ConversionValue::Recorded, Some(total)) => *total += value,
            (_, Some(_)) => {}
            (_, None) => {
                values.insert(row.customer, value);
            }
        }
    }
    evaluate_ranking(
        &ranking,
        &values,
        options.budget,
        options.cost_per_contact,
        options.points,
    )
}

/// The evaluation of contacting customers in the order of `ranking` (every eligible
/// customer, best first), where `converters` maps each converting customer to their
/// conversion's value (customers not in `ranking` are not counted).
pub fn evaluate_ranking(
    ranking: &[i64],
    converters: &HashMap<i64, f64>,
    budget: usize,
    cost_per_contact: f64,
    points: usize,
) -> Result<Evaluation, DecideError> {
    if budget == 0 {
        return Err(DecideError::Invalid("`budget` must be at least 1".into()));
    }
    let eligible = ranking.len();
    let budget = budget.min(eligible);
    // Cumulative conversions and value after each rank.
    let mut cumulative = Vec::with_capacity(eligible + 1);
    cumulative.push((0usize, 0.0f64));
    for customer in ranking {
        let (n, v) = *cumulative.last().expect("starts with a zero");
        cumulative.push(match converters.get(customer) {
            Some(value) => (n + 1, v + value),
            None => (n, v),
        });
    }
    let (total, total_value) = cumulative[eligible];
    let overall_rate = proportion(total as u64, eligible as u64);
    let outcome = |contacted: usize, conversions: f64, value: f64| Outcome {
        contacted,
        conversions,
        rate: if contacted == 0 {
            0.0
        } else {
            conversions / contacted as f64
        },
        value,
        net_value: value - contacted as f64 * cost_per_contact,
    };
    let point = |contacted: usize| {
        let (n, value) = cumulative[contacted];
        let rate = proportion(n as u64, contacted as u64);
        CurvePoint {
            contacted,
            share_contacted: proportion(contacted as u64, eligible as u64),
            conversions: n,
            gain: proportion(n as u64, total as u64),
            lift: if overall_rate > 0.0 {
                rate / overall_rate
            } else {
                0.0
            },
            value,
            net_value: value - contacted as f64 * cost_per_contact,
        }
    };
    let (n, value) = cumulative[budget];
    let share = proportion(budget as u64, eligible as u64);
    let random = outcome(budget, total as f64 * share, total_value * share);
    let mut at: Vec<usize> = (0..=points.max(1))
        .map(|j| (j as f64 * eligible as f64 / points.max(1) as f64).round() as usize)
        .collect();
    at.push(budget);
    at.sort_unstable();
    at.dedup();
    Ok(Evaluation {
        eligible,
        converters: total,
        at_budget: outcome(budget, n as f64, value),
        random,
        everyone: outcome(eligible, total as f64, total_value),
        lift: if random.conversions > 0.0 {
            n as f64 / random.conversions
        } else {
            0.0
        },
        captured: proportion(n as u64, total as u64),
        curve: at.into_iter().map(point).collect(),
    })
}

/// What a customer did after the campaign.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutcomeRow {
    /// External customer id.
    pub customer: i64,
    /// Whether they converted.
    pub converted: bool,
    /// What the conversion was worth, when recorded.
    pub value: Option<f64>,
}

/// Reads outcomes: `customer`, `converted` (1/0, true/false, yes/no), and optionally `value`.
pub fn read_outcomes(path: &Path) -> Result<Vec<OutcomeRow>, DecideError> {
    let mut reader = CsvReader::open(path, &["customer", "converted"], &["value"])?;
    let mut rows = Vec::new();
    // A customer's first row: whether they converted, and its line.
    let mut first: HashMap<i64, (bool, usize)> = HashMap::new();
    while let Some(record) = reader.next_record() {
        let record = record?;
        let row = OutcomeRow {
            customer: record.id("customer")?,
            converted: record.flag("converted")?,
            value: record.number_opt("value")?,
        };
        let (converted, line) = *first
            .entry(row.customer)
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

/// One group's observed result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupResult {
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
    pub target: GroupResult,
    /// The held-out group.
    pub control: GroupResult,
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
}

/// Measures a campaign: each audience member's outcome (several rows of a customer: converted
/// if any says so, values summed; no row: not converted), target against control.
pub fn measure(
    audience: &[AudienceRow],
    outcomes: &[OutcomeRow],
) -> Result<Measurement, DecideError> {
    let members: HashMap<i64, Group> = audience.iter().map(|r| (r.customer, r.group)).collect();
    let mut results: HashMap<i64, (bool, f64)> = HashMap::new();
    let mut outside_audience = 0;
    for row in outcomes {
        if !members.contains_key(&row.customer) {
            outside_audience += 1;
            continue;
        }
        let entry = results.entry(row.customer).or_insert((false, 0.0));
        entry.0 |= row.converted;
        entry.1 += row.value.unwrap_or(0.0);
    }
    let group = |group: Group| {
        let (mut customers, mut conversions, mut value) = (0usize, 0usize, 0.0);
        for row in audience.iter().filter(|r| r.group == group) {
            customers += 1;
            if let Some(&(converted, v)) = results.get(&row.customer) {
                conversions += usize::from(converted);
                value += v;
            }
        }
        (customers, conversions, value)
    };
    let z95 = two_sided_z(ALPHA);
    let result = |(customers, conversions, value): (usize, usize, f64)| GroupResult {
        customers,
        conversions,
        rate: proportion(conversions as u64, customers as u64),
        interval: wilson(conversions as u64, customers as u64, z95),
        value,
    };
    let (target, control) = (result(group(Group::Target)), result(group(Group::Control)));
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
    let per_customer = |g: &GroupResult| g.value / g.customers as f64;
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
        target,
        control,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten eligible customers ranked 1..=10; customers 1, 2, 4 and 9 converted, worth 10 each,
    /// contacts cost 1. By hand: the best 3 hold 2 conversions (rate 2/3 against 4/10
    /// overall: lift 5/3, gain 1/2), value 20, net 17; 3 random ones are expected to hold
    /// 1.2 conversions (value 12, net 9); everyone holds 4 (value 40, net 30).
    #[test]
    fn gains_and_lift_match_a_hand_computed_case() {
        let ranking: Vec<i64> = (1..=10).collect();
        let converters: HashMap<i64, f64> = [1, 2, 4, 9].iter().map(|&c| (c, 10.0)).collect();
        let e = evaluate_ranking(&ranking, &converters, 3, 1.0, 5).unwrap();
        assert_eq!((e.eligible, e.converters), (10, 4));
        assert_eq!(e.at_budget.conversions, 2.0);
        assert!((e.at_budget.rate - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!((e.at_budget.value, e.at_budget.net_value), (20.0, 17.0));
        assert!((e.random.conversions - 1.2).abs() < 1e-12);
        assert!((e.random.value - 12.0).abs() < 1e-12 && (e.random.net_value - 9.0).abs() < 1e-12);
        assert_eq!(
            (
                e.everyone.conversions,
                e.everyone.value,
                e.everyone.net_value
            ),
            (4.0, 40.0, 30.0)
        );
        assert!((e.lift - 2.0 / 1.2).abs() < 1e-12);
        assert_eq!(e.captured, 0.5);
        // Points at 0, 2, 3 (the budget), 4, 6, 8, 10 contacted.
        let at: Vec<usize> = e.curve.iter().map(|p| p.contacted).collect();
        assert_eq!(at, [0, 2, 3, 4, 6, 8, 10]);
        let gains: Vec<f64> = e.curve.iter().map(|p| p.gain).collect();
        assert_eq!(gains, [0.0, 0.5, 0.5, 0.75, 0.75, 0.75, 1.0]);
        let four = e.curve[3];
        assert_eq!(
            (four.conversions, four.value, four.net_value),
            (3, 30.0, 26.0)
        );
        assert!((four.lift - (3.0 / 4.0) / 0.4).abs() < 1e-12);
        assert_eq!(e.curve[6].lift, 1.0);
        assert_eq!(e.curve[0].lift, 0.0);
    }

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

    /// 400 target customers with 60 conversions against 400 control with 40: the z-test and
    /// Newcombe's interval as computed by hand in `stats`; customers without an outcome count
    /// as not converted, and rows outside the audience are ignored.
    #[test]
    fn measure_compares_target_with_control() {
        let mut audience = Vec::new();
        let mut outcomes = Vec::new();
        for c in 0..800i64 {
            let group = if c < 400 {
                Group::Target
            } else {
                Group::Control
            };
            audience.push(AudienceRow { customer: c, group });
            let converted = if c < 400 { c < 60 } else { c < 440 };
            // Non-converters of the target group report nothing.
            if converted || c >= 400 {
                outcomes.push(OutcomeRow {
                    customer: c,
                    converted,
                    value: converted.then_some(5.0),
                });
            }
        }
        outcomes.push(OutcomeRow {
            customer: 9_999,
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
        let only_target: Vec<AudienceRow> = audience[..400].to_vec();
        let err = measure(&only_target, &outcomes).unwrap_err().to_string();
        assert!(err.contains("no control group"), "{err}");
    }
}
