//! `ember nba`: each customer's next best action from an actions table (value × propensity ×
//! eligibility), with the runner-up and the parts of each score.

use anyhow::Result;
use clap::Args;
use ember_decide::nba::{self, Decision, NbaInputs};
use ember_decide::{DecideError, Destination, OutputKind};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::output::{parse_day, progress, today};

#[derive(Args)]
pub struct NbaArgs {
    /// An exported model directory (`ember export`).
    #[arg(long)]
    model: PathBuf,
    /// The actions: a CSV file `id,items,value[,categories,cap,cooldown_days]` (`items` and
    /// `categories` are `;`-separated lists).
    #[arg(long)]
    actions: PathBuf,
    /// Item categories, for actions with an allow-list: a CSV file `item,category`.
    #[arg(long, conflicts_with = "category_column")]
    items: Option<PathBuf>,
    /// Item categories from the model's item attributes instead: the categorical (or
    /// multi-valued) column of the run's `[data.items]` table that holds them.
    #[arg(long)]
    category_column: Option<String>,
    /// Past contacts, for caps and cool-downs: a CSV file `customer,action,day` (day:
    /// YYYY-MM-DD or a day number).
    #[arg(long)]
    contacts: Option<PathBuf>,
    /// The day decisions are made on, YYYY-MM-DD or a day number (default: today, UTC).
    #[arg(long)]
    today: Option<String>,
    /// Add a `because` column: N of the customer's own items that weigh most in each
    /// propensity.
    #[arg(long, default_value_t = 0, value_name = "N")]
    explain: usize,
    /// Which of a customer's known items count as had (ruling out an action that promotes
    /// only those, and never the item named): `all` (the default), `none` (actions on what
    /// people buy again), or `since:YYYY-MM-DD` (only those had on or after that day).
    #[arg(long, value_name = "POLICY")]
    exclude_known: Option<String>,
    /// Only these customers: a CSV file with a `user` column (default: every customer).
    #[arg(long)]
    users: Option<PathBuf>,
    /// Output CSV: customer,rank,action,item,value,propensity,eligibility,score[,because];
    /// rank 1 is the best action, 2 the runner-up.
    #[arg(long)]
    out: PathBuf,
    /// Replace `--out` if it exists (never an input, nor a file inside a run or model
    /// directory).
    #[arg(long)]
    force: bool,
    /// Hide the progress bar.
    #[arg(long)]
    no_progress: bool,
}

pub fn run(args: NbaArgs) -> Result<()> {
    let inputs: Vec<&Path> = [
        Some(args.model.as_path()),
        Some(args.actions.as_path()),
        args.items.as_deref(),
        args.contacts.as_deref(),
        args.users.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let destination = Destination::check("--out", &args.out, OutputKind::CSV, &inputs, args.force)?;
    let model = crate::output::load_model(&args.model)?;
    let actions = nba::read_actions(&args.actions, model.item_key_kind())?;
    let categories = match (&args.items, &args.category_column) {
        (Some(path), _) => nba::read_categories(path, model.item_key_kind())?,
        (None, Some(column)) => nba::categories_from_attributes(&model, column)?,
        (None, None) => nba::ItemCategories::default(),
    };
    let contacts = match &args.contacts {
        Some(path) => nba::read_contacts(path, &actions, model.user_key_kind())?,
        None => nba::ContactHistory::default(),
    };
    let today = match &args.today {
        Some(text) => parse_day(text, "--today")?,
        None => today(),
    };
    let known = crate::output::exclusion(args.exclude_known.as_deref(), &model)?;
    let inputs = NbaInputs {
        actions: &actions,
        categories: &categories,
        contacts: &contacts,
        today,
        explain: args.explain,
        known,
    };
    let customers: Vec<ember_decide::Key> = match &args.users {
        Some(path) => {
            let users = ember_decide::read_ids(path, "user", model.user_key_kind())?;
            for (row, user) in users.iter().enumerate() {
                model.user_index(user).map_err(|_| {
                    anyhow::anyhow!(
                        "{}: user {user} (data row {}) is not a customer of the model",
                        path.display(),
                        row + 1
                    )
                })?;
            }
            users
        }
        None => model.user_keys().to_vec(),
    };
    let show = !args.no_progress && std::io::stderr().is_terminal();
    let bar = progress(customers.len() as u64, "deciding", show);
    let mut best: BTreeMap<String, usize> = BTreeMap::new();
    let mut ineligible: BTreeMap<String, usize> = BTreeMap::new();
    let decisions = nba::next_best_actions(&model, customers, &inputs)?.inspect(
        |d: &Result<Decision, DecideError>| {
            if let Ok(d) = d {
                bar.inc(1);
                if let Some(b) = &d.best {
                    *best.entry(b.action.clone()).or_default() += 1;
                }
                for (_, why) in &d.ineligible {
                    let reason = match why {
                        nba::Ineligible::OwnsItems => "has every promoted item",
                        nba::Ineligible::Category => "outside the action's categories",
                        nba::Ineligible::Cap { .. } => "contact cap reached",
                        nba::Ineligible::CoolDown { .. } => "within the cool-down",
                    };
                    *ineligible.entry(reason.to_string()).or_default() += 1;
                }
            }
        },
    );
    let names = ember_decide::ItemNames::of(&model);
    let summary = nba::write_csv(decisions, &destination, args.explain > 0, names)?;
    bar.finish_and_clear();
    println!(
        "decided {} customers ({} with no eligible action), wrote {}",
        summary.customers,
        summary.without_action,
        args.out.display()
    );
    println!("excluded: {}", ember_decide::describe_exclusion(known));
    println!("best action:");
    for action in &actions {
        let n = best.get(&action.id).copied().unwrap_or(0);
        println!(
            "  {:<24} {n:>8} customers ({:.1}%)",
            action.id,
            100.0 * n as f64 / summary.customers.max(1) as f64
        );
    }
    if !ineligible.is_empty() {
        println!("actions not offered (customer × action), by the first rule failed:");
        for (reason, n) in &ineligible {
            println!("  {reason:<32} {n:>8}");
        }
    }
    Ok(())
}
