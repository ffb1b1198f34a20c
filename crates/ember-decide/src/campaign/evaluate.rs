//! Step 3: what targeting by the model is worth on held-out interactions.

use std::collections::HashMap;
use std::hash::Hash;
use std::path::Path;

use crate::stats::{Interval, proportion};
use crate::table::CsvReader;
use crate::{DecideError, ExportedModel, Key, KeyKind, Known, Options};

/// A held-out interaction: a customer took an item after the model's data ended.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldOutRow {
    /// External customer key.
    pub customer: Key,
    /// External item key.
    pub item: Key,
    /// What the interaction was worth, when recorded.
    pub value: Option<f64>,
}

/// Reads held-out interactions: `customer`, `item` (keys of the model's kinds, `customers` and
/// `items`), and optionally `value`.
pub fn read_held_out(
    path: &Path,
    customers: KeyKind,
    items: KeyKind,
) -> Result<Vec<HeldOutRow>, DecideError> {
    let mut reader = CsvReader::open(path, &["customer", "item"], &["value"])?;
    let mut rows = Vec::new();
    while let Some(record) = reader.next_record() {
        let record = record?;
        rows.push(HeldOutRow {
            customer: record.key("customer", customers, "customers")?,
            item: record.key("item", items, "items")?,
            value: record.number_opt("value")?,
        });
    }
    Ok(rows)
}

/// Reads a value per customer, `customer,value` (e.g. each customer's expected revenue), for
/// [`ConversionValue::PerCustomer`], customers being keys of `kind`. A customer listed twice is
/// an error naming the line.
pub fn read_customer_values(path: &Path, kind: KeyKind) -> Result<HashMap<Key, f64>, DecideError> {
    let mut reader = CsvReader::open(path, &["customer", "value"], &[])?;
    let mut values = HashMap::new();
    while let Some(record) = reader.next_record() {
        let record = record?;
        let customer = record.key("customer", kind, "customers")?;
        let value = record
            .number_opt("value")?
            .ok_or_else(|| record.error("value", "empty, expected a number"))?;
        if values.insert(customer.clone(), value).is_some() {
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
    PerCustomer(HashMap<Key, f64>),
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
    pub exclude: Vec<Key>,
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
    /// Its 95% interval: the 2.5th and 97.5th percentiles of the lift over
    /// [`LIFT_BOOTSTRAP`] bootstrap samples of the eligible customers (seeded); `None` when
    /// nobody converted. It says how much the lift rests on few conversions: targeting accuracy
    /// on held-out interactions, not the campaign's incremental effect (a field test measures
    /// that, `ember campaign measure`).
    pub lift_interval: Option<Interval>,
    /// `at_budget.conversions / everyone.conversions`: the share of all conversions reached.
    pub captured: f64,
    /// The curves, by customers contacted.
    pub curve: Vec<CurvePoint>,
}

/// Evaluates the audience of `item` on `held_out`: the eligible customers are ranked as
/// [`super::select_audience`] ranks them, and a customer converts when the held-out data holds them
/// taking `item`. Held-out rows of other items, and of customers not eligible (who already
/// have the item, are excluded, or are unknown to the model), are not counted.
pub fn evaluate_audience(
    model: &ExportedModel,
    item: &Key,
    held_out: &[HeldOutRow],
    options: &EvaluationOptions,
) -> Result<Evaluation, DecideError> {
    let query = Options {
        exclude: &options.exclude,
        known: options.known,
        explain: 0,
    };
    let ranking: Vec<Key> = model
        .audience_for(item, model.user_ids().len(), &query)?
        .into_iter()
        .map(|r| r.id)
        .collect();
    let mut values: HashMap<Key, f64> = HashMap::new();
    for row in held_out.iter().filter(|r| r.item == *item) {
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
                values.insert(row.customer.clone(), value);
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
pub fn evaluate_ranking<K: Eq + Hash>(
    ranking: &[K],
    converters: &HashMap<K, f64>,
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
        lift_interval: (total > 0).then(|| bootstrap_lift(&cumulative, budget, LIFT_SEED)),
        curve: at.into_iter().map(point).collect(),
    })
}

/// Bootstrap samples behind [`Evaluation::lift_interval`].
pub const LIFT_BOOTSTRAP: usize = 1000;
/// Their seed: the same evaluation always gives the same interval.
const LIFT_SEED: u64 = 0x5EED_0F_11F7;

/// The percentile interval of the lift at `budget` over bootstrap samples of the customers:
/// each sample draws as many customers as there are, with replacement, keeps the model's order
/// among them, contacts the best `budget` and compares their conversion rate with the
/// sample's. `cumulative[r]` is the conversions among the best `r` customers.
fn bootstrap_lift(cumulative: &[(usize, f64)], budget: usize, seed: u64) -> Interval {
    let eligible = cumulative.len() - 1;
    let converted: Vec<bool> = cumulative.windows(2).map(|w| w[1].0 > w[0].0).collect();
    let mut rng = crate::rng::Rng::new(seed);
    let mut counts = vec![0u32; eligible];
    let mut lifts = Vec::with_capacity(LIFT_BOOTSTRAP);
    for _ in 0..LIFT_BOOTSTRAP {
        counts.iter_mut().for_each(|c| *c = 0);
        for _ in 0..eligible {
            counts[rng.below(eligible)] += 1;
        }
        let (mut contacted, mut top, mut all) = (0usize, 0usize, 0usize);
        for (rank, &count) in counts.iter().enumerate() {
            let count = count as usize;
            let taken = count.min(budget - contacted);
            contacted += taken;
            if converted[rank] {
                top += taken;
                all += count;
            }
        }
        if all > 0 {
            lifts.push((top as f64 / budget as f64) / (all as f64 / eligible as f64));
        }
    }
    lifts.sort_by(f64::total_cmp);
    let at = |q: f64| lifts[((q * lifts.len() as f64) as usize).min(lifts.len() - 1)];
    Interval {
        low: at(0.025),
        high: at(0.975),
    }
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

    /// The lift's bootstrap interval covers the true lift about 95% of the time: 2,000
    /// customers, the model's best 200 converting with probability 0.2 and the others 0.02
    /// (true lift at a budget of 200: 0.2 / 0.038 = 5.26), 200 seeded repeats.
    #[test]
    fn the_lift_interval_covers_the_true_lift() {
        let true_lift = 0.2 / (0.2 * 0.1 + 0.02 * 0.9);
        let ranking: Vec<usize> = (0..2000).collect();
        let mut rng = crate::rng::Rng::new(7);
        let mut covered = 0;
        for _ in 0..200 {
            let converters: HashMap<usize, f64> = ranking
                .iter()
                .filter(|&&c| rng.uniform() < if c < 200 { 0.2 } else { 0.02 })
                .map(|&c| (c, 1.0))
                .collect();
            let e = evaluate_ranking(&ranking, &converters, 200, 0.0, 10).unwrap();
            let interval = e.lift_interval.unwrap();
            assert!(
                interval.low <= e.lift && e.lift <= interval.high,
                "{interval:?} {}",
                e.lift
            );
            covered += usize::from(interval.contains(true_lift));
        }
        eprintln!("the lift interval covered the true lift in {covered} of 200 repeats");
        assert!((180..=198).contains(&covered), "covered {covered} of 200");
    }
}
