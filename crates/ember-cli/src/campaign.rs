//! `ember campaign`: who gets an item's campaign (the customers who do not have it, ranked by
//! the model, within a budget, with a seeded random control group), how large the groups must
//! be, and what targeting is worth on interactions the model never saw (gains and lift against
//! random targeting and against sending to everyone). `ember campaign measure`: what the
//! campaign did, target against control.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use ember_charts::{Corner, LineChart, Marker, Series, Stroke};
use ember_decide::campaign::{
    self, AudienceOptions, ConversionValue, Evaluation, EvaluationOptions, HeldOutRow, Measurement,
    Outcome,
};
use ember_decide::{ExportedModel, Key, Known, describe_exclusion};
use serde::{Deserialize, Serialize};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::output::{PartialDir, spinner};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CampaignArgs {
    #[command(subcommand)]
    command: Option<CampaignCommand>,
    #[command(flatten)]
    plan: PlanArgs,
}

#[derive(Subcommand)]
enum CampaignCommand {
    /// After the campaign: observed conversion of target against control, the lift with its
    /// 95% interval and p-value, and a plain-language verdict.
    Measure(MeasureArgs),
    /// Records that someone approved the campaign's audience as it stands now (append-only
    /// `approvals.jsonl` in the campaign directory).
    Approve(crate::approval::ApproveArgs),
    /// Writes the target customers for the CRM, only from an audience approved as it stands.
    SendList(crate::approval::SendListArgs),
}

#[derive(Args)]
struct PlanArgs {
    /// An exported model directory (`ember export`).
    #[arg(long, required = true)]
    model: Option<PathBuf>,
    /// The item the campaign promotes (its key, as the data has it: `42`, `SKU-00042`).
    #[arg(long, required = true)]
    item: Option<String>,
    /// Customers in the audience (target and control together): the campaign's cap.
    #[arg(long, required = true)]
    budget: Option<usize>,
    /// What one conversion is worth (default: 1, so values count conversions).
    #[arg(long, conflicts_with = "values")]
    value: Option<f64>,
    /// What each customer's conversion is worth: a CSV file `customer,value`.
    #[arg(long)]
    values: Option<PathBuf>,
    /// What one contact costs, subtracted in the net values.
    #[arg(long, default_value_t = 0.0)]
    cost: f64,
    /// The share of the audience held out as a random control group, in [0, 1).
    #[arg(long, default_value_t = campaign::DEFAULT_CONTROL_SHARE)]
    control: f64,
    /// Seed of the control group's draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Which customers who already have the item (any interaction with it in the data the
    /// model was trained on) are left out: `all` (the default), `none` (items people buy
    /// again), or `since:YYYY-MM-DD` (only those who had it on or after that day).
    #[arg(long, value_name = "POLICY")]
    exclude_known: Option<String>,
    /// Interactions the model never saw, e.g. later purchases: a CSV file
    /// `customer,item[,value]`. Gives the gains and lift charts.
    #[arg(long, conflicts_with = "run")]
    holdout: Option<PathBuf>,
    /// Use the test split of this run (the model's training run) as the held-out interactions.
    #[arg(long)]
    run: Option<PathBuf>,
    /// The control group's expected conversion rate, for the group sizes (default: the
    /// held-out conversion rate of the audience when held-out interactions are given, else 2%).
    #[arg(long)]
    baseline_rate: Option<f64>,
    /// The target group's expected conversion rate with the contact (default: the baseline
    /// rate plus 25% of it).
    #[arg(long)]
    expected_rate: Option<f64>,
    /// Output directory (must not exist): audience.csv, campaign.json and, with held-out
    /// interactions, curve.csv, gains.png and lift.png.
    #[arg(long, required = true)]
    out: Option<PathBuf>,
    /// Approvals the audience needs before `ember campaign send-list` writes it (distinct
    /// approvers, `ember campaign approve`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    approvals_needed: u32,
    /// Hide the progress spinner.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Args)]
struct MeasureArgs {
    /// The campaign's audience file (`customer,…,group`), as `ember campaign` wrote it.
    #[arg(long)]
    audience: PathBuf,
    /// What customers did: a CSV file `customer,converted[,value]` (converted: 1/0,
    /// true/false or yes/no); audience members without a row count as not converted.
    #[arg(long)]
    outcomes: PathBuf,
    /// Also write the measurement to this new directory: `measure.json` (for `ember report`
    /// and other tools) and `rates.png` (the two groups' rates with their intervals).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// What `measure.json` holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct MeasureSummary {
    /// The two groups: customers, conversions, rate and its 95% interval, value.
    pub groups: Vec<MeasuredGroup>,
    /// Target rate − control rate, in points, with its 95% interval (Newcombe).
    pub difference_points: f64,
    pub difference_interval_points: (f64, f64),
    /// Relative lift and its 95% interval, when the control converted.
    pub relative_lift: Option<f64>,
    pub relative_interval: Option<(f64, f64)>,
    pub z: f64,
    pub p_value: f64,
    /// Conversions (and value, when values were given) the contact added.
    pub incremental_conversions: f64,
    pub incremental_value: Option<f64>,
    pub without_outcome: usize,
    pub outside_audience: usize,
    pub repeated_customers: usize,
    /// The verdict, as printed.
    pub verdict: String,
}

/// One group of `measure.json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct MeasuredGroup {
    pub group: String,
    pub customers: usize,
    pub conversions: usize,
    pub rate: f64,
    pub interval: (f64, f64),
    pub value: Option<f64>,
}

/// The model a decision output was made with: where it was, and the run it came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provenance {
    /// The model directory as given.
    pub dir: String,
    /// The manifest's `run_fingerprint`.
    pub run_fingerprint: String,
    /// The manifest's `dataset_fingerprint`.
    pub dataset_fingerprint: String,
}

impl Provenance {
    /// The provenance of `model`, loaded from `dir`.
    pub fn of(model: &ember_decide::ExportedModel, dir: &Path) -> Self {
        let manifest = model.manifest();
        Self {
            dir: dir.display().to_string(),
            run_fingerprint: manifest.run_fingerprint.clone(),
            dataset_fingerprint: manifest.dataset_fingerprint.clone(),
        }
    }

    /// The fingerprint of the run in `run_dir` when this model was not exported from it.
    pub fn other_run(&self, run_dir: &Path) -> Result<Option<String>> {
        let run = ember_train::export::run_fingerprint(run_dir)
            .with_context(|| format!("reading the run {}", run_dir.display()))?;
        Ok((self.run_fingerprint != run).then_some(run))
    }

    /// The model's run fingerprint as a message shows it.
    pub fn shown_fingerprint(&self) -> &str {
        if self.run_fingerprint.is_empty() {
            "none recorded"
        } else {
            &self.run_fingerprint
        }
    }
}

/// The sentence comparing the model's top customers with sending to everyone, which says so
/// when there is nothing to compare (no held-out conversion, or none among the top) instead
/// of dividing by zero.
pub fn mass_send_sentence(converters: usize, top: (usize, f64), everyone: (usize, f64)) -> String {
    let contacts = everyone.0 as f64 / top.0.max(1) as f64;
    if converters == 0 {
        "no held-out conversions: nobody eligible took the item in the held-out data, so it \
         cannot tell good targeting from bad"
            .to_string()
    } else if top.1 == 0.0 {
        format!(
            "the model's top {} hold none of the {converters} held-out conversions; sending to \
             everyone takes {contacts:.1}× the contacts",
            top.0
        )
    } else {
        format!(
            "sending to everyone takes {contacts:.1}× the contacts for {:.1}× the conversions",
            everyone.1 / top.1
        )
    }
}

/// The relative lift assumed for the group sizes when none is given.
const DEFAULT_RELATIVE_LIFT: f64 = 0.25;
/// The control's conversion rate assumed without held-out interactions.
const DEFAULT_BASELINE: f64 = 0.02;

/// What `campaign.json` holds: the headline numbers, for people and for `ember report`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CampaignSummary {
    /// Which model chose the audience: its directory and the fingerprint of the run it was
    /// exported from, which `ember report` checks against the run it reports on.
    pub model: Provenance,
    /// The item's key: a JSON number or string, as the model's item keys are.
    pub item: Key,
    /// The item's name, when the model names its items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_name: Option<String>,
    pub budget: usize,
    /// Which customers who have the item were left out (the exclusion policy, as
    /// [`describe_exclusion`] names it); absent from summaries written before it was recorded.
    #[serde(default)]
    pub excluded: Option<String>,
    /// Customers who could be chosen (do not have the item).
    pub eligible: usize,
    pub target: usize,
    pub control: usize,
    pub control_share: f64,
    pub seed: u64,
    /// Distinct approvals the audience needs before a send-list (1 in summaries written
    /// before approvals existed).
    #[serde(default = "one")]
    pub approvals_needed: u32,
    pub power: PowerSummary,
    /// On held-out interactions, when given.
    pub evaluation: Option<EvaluationSummary>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PowerSummary {
    pub baseline: f64,
    pub baseline_source: String,
    pub expected: f64,
    pub expected_source: String,
    pub per_group: usize,
    pub warning: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct EvaluationSummary {
    /// Where the held-out interactions came from.
    pub held_out: String,
    /// How conversions were valued.
    pub value_basis: String,
    pub eligible: usize,
    pub converters: usize,
    pub at_budget: OutcomeSummary,
    pub random: OutcomeSummary,
    pub everyone: OutcomeSummary,
    /// Conversions at the budget over random targeting's: targeting accuracy on held-out
    /// interactions, not an incremental effect.
    pub lift: f64,
    /// Its 95% bootstrap interval over customers (absent without conversions, and in
    /// summaries written before it was computed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lift_interval: Option<(f64, f64)>,
    /// The share of all conversions the budget reaches.
    pub captured: f64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct OutcomeSummary {
    pub contacted: usize,
    pub conversions: f64,
    pub rate: f64,
    pub value: f64,
    pub net_value: f64,
}

impl From<Outcome> for OutcomeSummary {
    fn from(o: Outcome) -> Self {
        Self {
            contacted: o.contacted,
            conversions: o.conversions,
            rate: o.rate,
            value: o.value,
            net_value: o.net_value,
        }
    }
}

pub fn run(args: CampaignArgs) -> Result<()> {
    match args.command {
        Some(CampaignCommand::Measure(m)) => measure(&m),
        Some(CampaignCommand::Approve(a)) => crate::approval::approve(&a),
        Some(CampaignCommand::SendList(s)) => crate::approval::send_list(&s),
        None => plan(args.plan),
    }
}

/// Held-out interactions and how the evaluation's eligible customers are found.
struct HeldOut {
    rows: Vec<HeldOutRow>,
    description: String,
    /// Whether the rows carry values for every interaction with the item.
    recorded_values: bool,
    /// Customers who had the item before the held-out period (for a run's test split, whose
    /// items the export counts as known), as far as the exclusion policy counts them: the
    /// evaluation ranks everyone else.
    owners: Option<Vec<Key>>,
}

/// The customers of `data` whom `policy` leaves out of `item`'s campaign for having it, not
/// counting a held-out test interaction: any known pair with the item (those below the
/// implicit threshold included), or, under `since:`, those last had on or after the day.
/// Under a time split, only pairs from before the cutoff (with their days then), as the
/// export holds them: what came after is the future the backtest measures.
fn owners_before_test(data: &ember_data::Dataset, item: &Key, policy: Known) -> Vec<Key> {
    let Some(i) = data.item_ids.internal_of_key(item) else {
        return Vec::new();
    };
    let (known, days) = data.known_at_data_end();
    (0..data.num_users())
        .filter(|&u| {
            let Ok(at) = known[u].binary_search(&i) else {
                return false;
            };
            let trained = data.train[u].contains(&i) || data.valid[u].contains(&i);
            if data.time_split.is_none() && data.test[u].contains(&i) && !trained {
                return false;
            }
            match policy {
                Known::Exclude => true,
                Known::Include => false,
                Known::Since(day) => days.is_none_or(|d| d[u][at] >= day),
            }
        })
        .map(|u| data.user_ids.key(u as u32))
        .collect()
}

fn held_out(
    args: &PlanArgs,
    model: &ExportedModel,
    item: &Key,
    policy: Known,
) -> Result<Option<HeldOut>> {
    if let Some(path) = &args.holdout {
        let rows = campaign::read_held_out(path, model.user_key_kind(), model.item_key_kind())?;
        let recorded_values = rows
            .iter()
            .filter(|r| r.item == *item)
            .all(|r| r.value.is_some())
            && rows.iter().any(|r| r.item == *item);
        return Ok(Some(HeldOut {
            description: format!("{} ({} interactions)", path.display(), rows.len()),
            rows,
            recorded_values,
            owners: None,
        }));
    }
    let Some(run_dir) = &args.run else {
        return Ok(None);
    };
    let run = ember_train::load_run(run_dir, ember_train::Backend::Flex)
        .with_context(|| format!("reading the run {}", run_dir.display()))?;
    let data = &run.data;
    let external_user = |u: usize| data.user_ids.key(u as u32);
    let mut rows = Vec::new();
    for (u, items) in data.test.iter().enumerate() {
        for &i in items {
            rows.push(HeldOutRow {
                customer: external_user(u),
                item: data.item_ids.key(i),
                value: None,
            });
        }
    }
    // The export knows every pair of the data, the test split's included (but under a time
    // split, which it knows as of the cutoff); before the test period a customer had all but
    // their test items.
    let owners = owners_before_test(data, item, policy);
    Ok(Some(HeldOut {
        description: format!(
            "the test split of {} ({} interactions)",
            run_dir.display(),
            rows.len()
        ),
        rows,
        recorded_values: false,
        owners: Some(owners),
    }))
}

/// The item `text` names (`--item`), a key of the model's item kind that the model knows.
fn item_key(model: &ExportedModel, text: &str) -> Result<Key> {
    let kind = model.item_key_kind();
    let Some(item) = Key::parse(kind, text) else {
        bail!(
            "--item {text}: not {} key: the model's items have {} keys",
            if kind == ember_decide::KeyKind::Integer {
                "an integer"
            } else {
                "a string"
            },
            kind.name()
        );
    };
    model.item_index(&item).with_context(|| {
        format!("--item {item}: the model has no such item (ids are the data's own)")
    })?;
    Ok(item)
}

fn plan(args: PlanArgs) -> Result<()> {
    let (Some(model_dir), Some(item_text), Some(budget), Some(out)) =
        (&args.model, args.item.as_deref(), args.budget, &args.out)
    else {
        bail!("--model, --item, --budget and --out are required");
    };
    if budget == 0 {
        bail!("--budget must be at least 1");
    }
    if !(0.0..1.0).contains(&args.control) {
        bail!("--control must lie in [0, 1), got {}", args.control);
    }
    // A NaN would be written into campaign.json as `null` and every value after it as NaN.
    for (flag, amount) in [("--value", args.value), ("--cost", Some(args.cost))] {
        if let Some(x) = amount
            && !(x.is_finite() && x >= 0.0)
        {
            bail!("{flag} must be a finite amount of 0 or more, got {x}");
        }
    }
    for (flag, rate) in [
        ("--baseline-rate", args.baseline_rate),
        ("--expected-rate", args.expected_rate),
    ] {
        if let Some(r) = rate
            && !(r > 0.0 && r < 1.0)
        {
            bail!("{flag} must lie strictly between 0 and 1, got {r}");
        }
    }
    let inputs: Vec<&Path> = [
        Some(model_dir.as_path()),
        args.values.as_deref(),
        args.holdout.as_deref(),
        args.run.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let dir = PartialDir::create("--out", out, &inputs)?;
    let model = crate::output::load_model(model_dir)?;
    let provenance = Provenance::of(&model, model_dir);
    if let Some(run_dir) = &args.run
        && let Some(run) = provenance.other_run(run_dir)?
    {
        bail!(
            "--run {}: this is not the run the model {} was exported from (the model records \
             run fingerprint {}; this run's is {}): a model is scored on its own run's test \
             split",
            run_dir.display(),
            model_dir.display(),
            provenance.shown_fingerprint(),
            run
        );
    }
    let item = item_key(&model, item_text)?;
    let item_name = model.item_name_of(&item).map(String::from);
    let shown = ember_decide::label(&item, item_name.as_deref());
    let known = crate::output::exclusion(args.exclude_known.as_deref(), &model)?;
    let values = args
        .values
        .as_deref()
        .map(|path| campaign::read_customer_values(path, model.user_key_kind()))
        .transpose()?;
    let show = !args.no_progress && std::io::stderr().is_terminal();

    let bar = spinner(format!("ranking customers for item {shown}"), show);
    let mut options = AudienceOptions::new(budget);
    options.control_share = args.control;
    options.seed = args.seed;
    options.known = known;
    let audience = campaign::select_audience(&model, &item, &options)?;
    audience.write_csv(&dir.path("audience.csv"))?;
    bar.finish_and_clear();
    let (target, control) = (
        audience.count(campaign::Arm::Target),
        audience.count(campaign::Arm::Control),
    );
    println!(
        "campaign for item {shown}: {} customers of the {} who do not have it ({} target, {} \
         control, seed {})",
        audience.members.len(),
        audience.eligible,
        target,
        control,
        args.seed
    );
    println!("excluded: {}", describe_exclusion(known));

    let held = held_out(&args, &model, &item, known)?;
    let mut evaluation_summary = None;
    let mut evaluation: Option<Evaluation> = None;
    if let Some(held) = &held {
        let bar = spinner("evaluating on held-out interactions".into(), show);
        let (value, value_basis) = match (&values, args.value) {
            (Some(v), _) => (
                ConversionValue::PerCustomer(v.clone()),
                format!(
                    "per customer, from {}",
                    args.values.as_ref().unwrap().display()
                ),
            ),
            (None, Some(v)) => (
                ConversionValue::PerConversion(v),
                format!("{v} per conversion (--value)"),
            ),
            (None, None) if held.recorded_values => (
                ConversionValue::Recorded,
                "the held-out interactions' own `value`".to_string(),
            ),
            (None, None) => (
                ConversionValue::PerConversion(1.0),
                "1 per conversion (no --value given): values count conversions".to_string(),
            ),
        };
        let mut options = EvaluationOptions::new(budget, 1.0);
        options.value = value;
        options.cost_per_contact = args.cost;
        options.known = known;
        if let Some(owners) = &held.owners {
            options.known = Known::Include;
            options.exclude = owners.clone();
        }
        let e = campaign::evaluate_audience(&model, &item, &held.rows, &options)?;
        bar.finish_and_clear();
        write_curve(&dir, &e)?;
        dir.write("gains.png", &gains_chart(&shown, &e)?)?;
        dir.write("lift.png", &lift_chart(&shown, &e)?)?;
        print_evaluation(&e, &held.description, &value_basis);
        evaluation_summary = Some(EvaluationSummary {
            held_out: held.description.clone(),
            value_basis,
            eligible: e.eligible,
            converters: e.converters,
            at_budget: e.at_budget.into(),
            random: e.random.into(),
            everyone: e.everyone.into(),
            lift: e.lift,
            lift_interval: e.lift_interval.map(|i| (i.low, i.high)),
            captured: e.captured,
        });
        evaluation = Some(e);
    }

    // Group sizes: the control's rate without contact against the target's with it.
    let held_rate = evaluation
        .as_ref()
        .map(|e| e.at_budget.rate)
        .filter(|r| *r > 0.0 && *r < 1.0);
    let (baseline, baseline_source) = match (args.baseline_rate, held_rate, &held) {
        (Some(b), _, _) => (b, "given with --baseline-rate".to_string()),
        (None, Some(r), Some(h)) => (
            r,
            format!(
                "the held-out conversion rate of the model's top {} customers in {}",
                evaluation.as_ref().map_or(0, |e| e.at_budget.contacted),
                h.description
            ),
        ),
        (None, _, Some(_)) => (
            DEFAULT_BASELINE,
            format!(
                "default {:.0}%: no customer of the budget converted in the held-out data",
                DEFAULT_BASELINE * 100.0
            ),
        ),
        (None, _, None) => (
            DEFAULT_BASELINE,
            format!(
                "default {:.0}% (no held-out interactions: give --holdout, --run or --baseline-rate)",
                DEFAULT_BASELINE * 100.0
            ),
        ),
    };
    let (expected, expected_source) = match args.expected_rate {
        Some(r) => (r, "given with --expected-rate".to_string()),
        None => (
            baseline * (1.0 + DEFAULT_RELATIVE_LIFT),
            format!(
                "default: the baseline plus {:.0}% of it (set --expected-rate)",
                DEFAULT_RELATIVE_LIFT * 100.0
            ),
        ),
    };
    let power = campaign::power_check(target, control, baseline, expected, audience.eligible)
        .context("the group-size calculation")?;
    println!(
        "group sizes (95% confidence, two-sided; 80% power): telling {:.2}% from {:.2}% needs {} \
         customers per group",
        baseline * 100.0,
        expected * 100.0,
        power.per_group
    );
    println!("  baseline {:.2}%: {baseline_source}", baseline * 100.0);
    println!("  expected {:.2}%: {expected_source}", expected * 100.0);
    if let Some(warning) = &power.warning {
        eprintln!("warning: {warning}");
    }
    let summary = CampaignSummary {
        model: provenance,
        item,
        item_name,
        budget,
        excluded: Some(describe_exclusion(known)),
        eligible: audience.eligible,
        target,
        control,
        control_share: args.control,
        seed: args.seed,
        approvals_needed: args.approvals_needed,
        power: PowerSummary {
            baseline,
            baseline_source,
            expected,
            expected_source,
            per_group: power.per_group,
            warning: power.warning.clone(),
        },
        evaluation: evaluation_summary,
    };
    dir.write(
        "campaign.json",
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    let written = dir.commit()?;
    println!(
        "wrote {}/ (audience.csv, campaign.json{})",
        written.display(),
        if evaluation.is_some() {
            ", curve.csv, gains.png, lift.png"
        } else {
            ""
        }
    );
    Ok(())
}

fn print_evaluation(e: &Evaluation, held_out: &str, value_basis: &str) {
    println!(
        "on held-out interactions ({held_out}): {} of the {} eligible customers converted",
        e.converters, e.eligible
    );
    println!("  values: {value_basis}");
    println!(
        "  {:<28} {:>10} {:>12} {:>8} {:>12} {:>12}",
        "", "contacted", "conversions", "rate", "value", "net value"
    );
    let top = format!("model's top {}", e.at_budget.contacted);
    let random = format!("{} at random", e.random.contacted);
    for (name, o) in [
        (top.as_str(), &e.at_budget),
        (random.as_str(), &e.random),
        ("everyone (mass send)", &e.everyone),
    ] {
        println!(
            "  {name:<28} {:>10} {:>12.1} {:>7.2}% {:>12.2} {:>12.2}",
            o.contacted,
            o.conversions,
            o.rate * 100.0,
            o.value,
            o.net_value
        );
    }
    let share = e.at_budget.contacted as f64 / e.eligible.max(1) as f64;
    let mass_send = mass_send_sentence(
        e.converters,
        (e.at_budget.contacted, e.at_budget.conversions),
        (e.everyone.contacted, e.everyone.conversions),
    );
    if e.converters == 0 {
        println!("  {mass_send}");
    } else {
        let interval = e
            .lift_interval
            .map(|i| {
                format!(
                    " (95% interval {:.2}× to {:.2}×, bootstrap over customers)",
                    i.low, i.high
                )
            })
            .unwrap_or_default();
        println!(
            "  targeting accuracy on held-out interactions: lift against random targeting \
             {:.2}×{interval}; the top {:.1}% of customers hold {:.1}% of the conversions \
             ({mass_send})",
            e.lift,
            share * 100.0,
            e.captured * 100.0,
        );
        println!(
            "  (this is how well the model finds who takes the item, not what contacting them \
             adds: a field test against the control group measures that, `ember campaign \
             measure`)"
        );
    }
}

fn write_curve(dir: &PartialDir, e: &Evaluation) -> Result<()> {
    let mut text =
        String::from("contacted,share_contacted,conversions,gain,lift,value,net_value\n");
    for p in &e.curve {
        text.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            p.contacted, p.share_contacted, p.conversions, p.gain, p.lift, p.value, p.net_value
        ));
    }
    dir.write("curve.csv", text.as_bytes())
}

fn budget_marker(e: &Evaluation) -> Marker {
    let share = e.at_budget.contacted as f64 / e.eligible.max(1) as f64;
    Marker {
        x: share * 100.0,
        label: format!("budget: {} customers", e.at_budget.contacted),
    }
}

/// Cumulative gains: the share of the held-out conversions reached by contacting the best x%;
/// `item` is the item as [`ember_decide::label`] shows it.
pub fn gains_chart(item: &str, e: &Evaluation) -> Result<Vec<u8>> {
    let chart = LineChart {
        title: format!(
            "Cumulative gains, item {item} ({} conversions held out)",
            e.converters
        ),
        x_label: "% of eligible customers contacted, best first".into(),
        y_label: "% of conversions reached".into(),
        series: vec![
            Series {
                label: "targeted by the model".into(),
                points: e
                    .curve
                    .iter()
                    .map(|p| (p.share_contacted * 100.0, p.gain * 100.0))
                    .collect(),
                stroke: Stroke::Data,
            },
            Series {
                label: "random targeting".into(),
                points: vec![(0.0, 0.0), (100.0, 100.0)],
                stroke: Stroke::Reference,
            },
        ],
        marker: Some(budget_marker(e)),
        legend: Corner::LowerRight,
        y_from_zero: true,
        whole_x: false,
    };
    Ok(ember_charts::line_charts(&[chart], 900, 540)?)
}

/// Lift: the conversion rate of the best x% over the eligible customers' rate; `item` as
/// [`gains_chart`] takes it.
pub fn lift_chart(item: &str, e: &Evaluation) -> Result<Vec<u8>> {
    let chart = LineChart {
        title: format!("Lift over random targeting, item {item}"),
        x_label: "% of eligible customers contacted, best first".into(),
        y_label: "lift (× the random rate)".into(),
        series: vec![
            Series {
                label: "targeted by the model".into(),
                points: e
                    .curve
                    .iter()
                    .filter(|p| p.contacted > 0)
                    .map(|p| (p.share_contacted * 100.0, p.lift))
                    .collect(),
                stroke: Stroke::Data,
            },
            Series {
                label: "random targeting (1×)".into(),
                points: vec![(0.0, 1.0), (100.0, 1.0)],
                stroke: Stroke::Reference,
            },
        ],
        marker: Some(budget_marker(e)),
        legend: Corner::UpperRight,
        y_from_zero: true,
        whole_x: false,
    };
    Ok(ember_charts::line_charts(&[chart], 900, 540)?)
}

fn measure(args: &MeasureArgs) -> Result<()> {
    let dir = match &args.out {
        Some(out) => Some(PartialDir::create(
            "--out",
            out,
            &[args.audience.as_path(), args.outcomes.as_path()],
        )?),
        None => None,
    };
    // No model is given: the audience file's keys say their kind, and the outcomes must match.
    let kind = campaign::audience_key_kind(&args.audience)?;
    let audience = campaign::read_audience(&args.audience, kind)?;
    let outcomes = campaign::read_outcomes(&args.outcomes, kind)?;
    let m = campaign::measure(&audience, &outcomes)?;
    print_measurement(&m);
    println!();
    let verdict = verdict(&m);
    println!("{verdict}");
    if let Some(dir) = dir {
        let summary = measure_summary(&m, verdict);
        dir.write(
            "measure.json",
            serde_json::to_string_pretty(&summary)?.as_bytes(),
        )?;
        dir.write("rates.png", &rates_chart(&m)?)?;
        let written = dir.commit()?;
        println!("wrote {}/ (measure.json, rates.png)", written.display());
    }
    Ok(())
}

fn measure_summary(m: &Measurement, verdict: String) -> MeasureSummary {
    let group = |name: &str, g: &campaign::ArmResult| MeasuredGroup {
        group: name.into(),
        customers: g.customers,
        conversions: g.conversions,
        rate: g.rate,
        interval: (g.interval.low, g.interval.high),
        value: m.values_given.then_some(g.value),
    };
    MeasureSummary {
        groups: vec![group("target", &m.target), group("control", &m.control)],
        difference_points: m.difference * 100.0,
        difference_interval_points: (
            m.difference_interval.low * 100.0,
            m.difference_interval.high * 100.0,
        ),
        relative_lift: m.relative_lift,
        relative_interval: m.relative_interval.map(|i| (i.low, i.high)),
        z: m.z,
        p_value: m.p_value,
        incremental_conversions: m.incremental_conversions,
        incremental_value: m.values_given.then_some(m.incremental_value),
        without_outcome: m.without_outcome,
        outside_audience: m.outside_audience,
        repeated_customers: m.repeated,
        verdict,
    }
}

/// The two groups' conversion rates, each a short bar at its rate on its 95% interval.
fn rates_chart(m: &Measurement) -> Result<Vec<u8>> {
    let group = |x: f64, name: &str, g: &campaign::ArmResult| {
        let (rate, low, high) = (
            g.rate * 100.0,
            g.interval.low * 100.0,
            g.interval.high * 100.0,
        );
        Series {
            label: format!(
                "{name}: {} of {} customers ({rate:.2}%, 95% interval {low:.2}% to {high:.2}%)",
                g.conversions, g.customers
            ),
            points: vec![
                (x, low),
                (x, high),
                (x, rate),
                (x - 0.2, rate),
                (x + 0.2, rate),
            ],
            stroke: Stroke::Data,
        }
    };
    let chart = LineChart {
        title: "Conversion rates, contacted (target) and not (control)".into(),
        x_label: "1 = control, 2 = target".into(),
        y_label: "% of the group who converted".into(),
        series: vec![
            group(1.0, "control", &m.control),
            group(2.0, "target", &m.target),
        ],
        marker: None,
        legend: Corner::LowerRight,
        y_from_zero: true,
        whole_x: true,
    };
    Ok(ember_charts::line_charts(&[chart], 900, 540)?)
}

fn percent(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

fn print_measurement(m: &Measurement) {
    // A value column only when the outcomes gave values.
    let value = |v: f64| match m.values_given {
        true => format!(" {v:>12.2}"),
        false => String::new(),
    };
    println!(
        "{:<10} {:>10} {:>12} {:>8}   {:<22}{}",
        "group",
        "customers",
        "conversions",
        "rate",
        "95% interval",
        if m.values_given {
            format!(" {:>12}", "value")
        } else {
            String::new()
        }
    );
    for (name, g) in [("target", &m.target), ("control", &m.control)] {
        println!(
            "{name:<10} {:>10} {:>12} {:>8}   {:<22}{}",
            g.customers,
            g.conversions,
            percent(g.rate),
            format!(
                "{} to {}",
                percent(g.interval.low),
                percent(g.interval.high)
            ),
            value(g.value)
        );
    }
    println!(
        "absolute lift: {:+.2} points (95% interval {:+.2} to {:+.2}, Newcombe)",
        m.difference * 100.0,
        m.difference_interval.low * 100.0,
        m.difference_interval.high * 100.0
    );
    match (m.relative_lift, m.relative_interval) {
        (Some(r), Some(i)) => println!(
            "relative lift: {:+.1}% (95% interval {:+.1}% to {:+.1}%, log ratio)",
            r * 100.0,
            i.low * 100.0,
            i.high * 100.0
        ),
        (Some(r), None) => println!(
            "relative lift: {:+.1}% (no interval: a group without conversions)",
            r * 100.0
        ),
        _ => println!("relative lift: undefined (the control group had no conversions)"),
    }
    println!(
        "two-proportion z-test: z = {:.3}, p = {:.4}",
        m.z, m.p_value
    );
    let added_value = match m.values_given {
        true => format!(", {:.2} in value", m.incremental_value),
        false => String::new(),
    };
    println!(
        "added by the contact: {:.1} conversions{added_value}, over the {} target customers",
        m.incremental_conversions, m.target.customers
    );
    if m.without_outcome > 0 || m.outside_audience > 0 {
        println!(
            "({} audience members had no outcome row and count as not converted; {} outcome rows \
             were of customers outside the audience and were ignored)",
            m.without_outcome, m.outside_audience
        );
    }
    if m.repeated > 0 {
        println!(
            "({} customers have several outcome rows: each counts once, converted if a row says \
             so{})",
            m.repeated,
            if m.values_given {
                ", values summed"
            } else {
                ""
            }
        );
    }
}

/// A short verdict a stakeholder can read.
pub fn verdict(m: &Measurement) -> String {
    let (t, c) = (percent(m.target.rate), percent(m.control.rate));
    let (low, high) = (
        m.difference_interval.low * 100.0,
        m.difference_interval.high * 100.0,
    );
    if low > 0.0 {
        format!(
            "Verdict: the campaign worked. Contacted customers converted at {t}, against {c} in \
             the control group that was not contacted: {:.1} more conversions than without the \
             campaign. The true lift lies between {low:.2} and {high:.2} percentage points (95% \
             confidence); a difference this large would arise by chance alone with probability \
             {:.4}.",
            m.incremental_conversions, m.p_value
        )
    } else if high < 0.0 {
        format!(
            "Verdict: the campaign hurt. Contacted customers converted at {t}, below the {c} of \
             the control group; the lift lies between {low:.2} and {high:.2} percentage points \
             (95% confidence), p = {:.4}.",
            m.p_value
        )
    } else {
        format!(
            "Verdict: not proven. Contacted customers converted at {t} and the control group at \
             {c}, but the difference could be chance: the true lift lies anywhere between \
             {low:.2} and {high:.2} percentage points (95% confidence), p = {:.4}.{}",
            m.p_value,
            settling(m)
        )
    }
}

/// What would settle a result that is not proven: the customers per group that tell the two
/// observed rates apart, when they differ.
fn settling(m: &Measurement) -> String {
    let (p1, p2) = (m.control.rate, m.target.rate);
    if p1 == p2 || !(0.0..1.0).contains(&p1) || !(0.0..1.0).contains(&p2) || p1.max(p2) == 0.0 {
        return " A larger test would settle it.".into();
    }
    let n = ember_decide::stats::group_size(
        p1.max(1e-9),
        p2.max(1e-9),
        campaign::ALPHA,
        campaign::POWER,
    );
    format!(
        " If these rates are the true ones, telling them apart takes about {n} customers in each \
         group (95% confidence, 80% power); this test had {} and {}.",
        m.target.customers, m.control.customers
    )
}

fn one() -> u32 {
    1
}

/// Reads a campaign directory's `campaign.json`.
pub fn read_summary(dir: &Path) -> Result<CampaignSummary> {
    let path = dir.join("campaign.json");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a campaign summary written by `ember campaign`",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_decide::campaign::{Arm, AudienceRow, OutcomeRow};

    /// 200 target customers with 12 conversions against 200 control with 8: not proven, and
    /// the verdict says, on its own, how large groups the observed 6% and 4% would need.
    #[test]
    fn a_verdict_that_is_not_proven_says_what_would_settle_it() {
        let mut audience = Vec::new();
        let mut outcomes = Vec::new();
        for c in 0..400i64 {
            let arm = if c < 200 { Arm::Target } else { Arm::Control };
            audience.push(AudienceRow {
                customer: Key::from(c),
                arm,
            });
            let converted = if c < 200 { c < 12 } else { c < 208 };
            outcomes.push(OutcomeRow {
                customer: Key::from(c),
                converted,
                value: None,
            });
        }
        let m = campaign::measure(&audience, &outcomes).unwrap();
        let needed = ember_decide::stats::group_size(0.04, 0.06, campaign::ALPHA, campaign::POWER);
        let text = verdict(&m);
        assert!(text.starts_with("Verdict: not proven."), "{text}");
        assert!(
            text.ends_with(&format!(
                "If these rates are the true ones, telling them apart takes about {needed} \
                 customers in each group (95% confidence, 80% power); this test had 200 and 200."
            )),
            "{text}"
        );
        assert!(!text.contains("ember campaign"), "{text}");
    }
}
