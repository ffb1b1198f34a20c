//! Next best action: for each customer, the action of an actions table that is worth most,
//! `score = value × propensity × eligibility`, with the runner-up and every part of both
//! scores, so a reviewer can see why.
//!
//! - An action promotes one or more items (`items`); its propensity for a customer is the
//!   highest [`crate::propensity`] of the promoted items the customer does not have yet (that
//!   item is the one named, and explained).
//! - Eligibility is 1 or 0, by these rules in this order (the first that fails is the reason):
//!   1. owners: a customer who has every promoted item is not offered the action;
//!   2. categories: an action with an allow-list of categories is offered only to customers
//!      who have an item (among their known items) of one of those categories, as the item
//!      metadata file says;
//!   3. cap: a customer contacted with the action `cap` times already (contact history, all
//!      of it) is not contacted again;
//!   4. cool-down: nor one contacted with it fewer than `cooldown_days` days before `today`.
//! - Ties in score go to the action listed first.
//! - What a customer has, for the owners rule and the open items, is the known items the
//!   exclusion policy ([`NbaInputs::known`]) leaves out: every known item by default, none for
//!   actions on what people buy again, or those had since a date. The categories rule reads
//!   every known item whatever the policy (a customer's tastes). An export without known
//!   items (format version 1) makes every customer an owner of nothing.
//!
//! Files (CSV with a header): actions `id,items,value[,categories,cap,cooldown_days]`
//! (`items` and `categories` are `;`-separated lists); item metadata `item,category` (an
//! item may have several rows); contact history `customer,action,day` (`day` a date
//! `YYYY-MM-DD` or a day number, as `today`).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::destination::Destination;
use crate::names::ItemNames;
use crate::propensity::propensities;
use crate::table::{AtomicFile, CsvReader};
use crate::{Because, DecideError, ExportedModel, Key, KeyKind, Known, because_field, number};
use ember_infer::ColumnEncoder;

/// One action of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// Its id, as the contact history names it.
    pub id: String,
    /// The items it promotes (external keys).
    pub items: Vec<Key>,
    /// What a conversion is worth.
    pub value: f64,
    /// Categories a customer must have an item of (empty: anyone).
    pub categories: Vec<String>,
    /// Most contacts with it per customer (`None`: no cap).
    pub cap: Option<u32>,
    /// Days to wait after a contact with it (`None`: none).
    pub cooldown_days: Option<u32>,
}

fn list(text: Option<&str>) -> Vec<&str> {
    text.map(|t| {
        t.split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

/// Reads the actions table (see the module docs), its items keys of `items` (the model's item
/// kind). An id listed twice, an action without items, an item key of the other kind, or a
/// negative or non-finite value is an error naming the line.
pub fn read_actions(path: &Path, items: KeyKind) -> Result<Vec<Action>, DecideError> {
    let kind = items;
    let mut reader = CsvReader::open(
        path,
        &["id", "items", "value"],
        &["categories", "cap", "cooldown_days"],
    )?;
    let mut actions: Vec<Action> = Vec::new();
    while let Some(record) = reader.next_record() {
        let record = record?;
        let id = record.text("id")?.to_string();
        if actions.iter().any(|a| a.id == id) {
            return Err(record.error("id", format!("action `{id}` is listed twice")));
        }
        let items = record.keys("items", kind, "items")?;
        if items.is_empty() {
            return Err(record.error("items", "empty, expected item keys separated by `;`"));
        }
        let value: f64 = record.parse("value", "a number")?;
        if !(value.is_finite() && value >= 0.0) {
            return Err(record.error("value", format!("expected a number ≥ 0, got {value}")));
        }
        let cap: Option<u32> = record.parse_opt("cap", "a whole number of contacts")?;
        if cap == Some(0) {
            return Err(record.error(
                "cap",
                "0 contacts would never offer the action: give a cap of 1 or more, or remove \
                 the row to retire the action",
            ));
        }
        actions.push(Action {
            id,
            items,
            value,
            categories: list(record.get("categories"))
                .into_iter()
                .map(String::from)
                .collect(),
            cap,
            cooldown_days: record.parse_opt("cooldown_days", "a whole number of days")?,
        });
    }
    Ok(actions)
}

/// Each item's categories.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemCategories(pub HashMap<Key, Vec<String>>);

/// Reads item metadata `item,category`, items being keys of `kind` (the model's).
pub fn read_categories(path: &Path, kind: KeyKind) -> Result<ItemCategories, DecideError> {
    let mut reader = CsvReader::open(path, &["item", "category"], &[])?;
    let mut map: HashMap<Key, Vec<String>> = HashMap::new();
    while let Some(record) = reader.next_record() {
        let record = record?;
        let item = record.key("item", kind, "items")?;
        let category = record.text("category")?.to_string();
        let categories = map.entry(item).or_default();
        if !categories.contains(&category) {
            categories.push(category);
        }
    }
    Ok(ItemCategories(map))
}

/// Each item's categories from the model's item attributes: the values of its column
/// `column` (categorical, or multi-valued for an item in several categories), as the run's
/// `[data.items]` table had them. Items without a value have no category.
pub fn categories_from_attributes(
    model: &ExportedModel,
    column: &str,
) -> Result<ItemCategories, DecideError> {
    let invalid =
        |why: String| DecideError::Invalid(format!("--category-column `{column}`: {why}"));
    let items = model.attributes().items.as_ref().ok_or_else(|| {
        invalid("the model has no item attributes (its run had no [data.items] table)".into())
    })?;
    let columns = &items.schema.columns;
    let position = columns
        .iter()
        .position(|c| c.name == column)
        .ok_or_else(|| {
            let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            invalid(format!(
                "no such item attribute; the items have {}",
                names.join(", ")
            ))
        })?;
    let vocabulary = match &columns[position].encoder {
        ColumnEncoder::Categorical { vocabulary } | ColumnEncoder::Multi { vocabulary, .. } => {
            vocabulary
        }
        _ => return Err(invalid("a number, not a categorical column".into())),
    };
    let rows = items.features.as_ref().ok_or_else(|| {
        invalid("the export carries no item attribute rows: export the run again".into())
    })?;
    // The column's known values are features offset + 1 ..= offset + vocabulary (its feature
    // `offset` is the unknown bucket).
    let offset = items.schema.offsets()[position] as u32;
    let mut map = HashMap::new();
    for item in 0..rows.rows() {
        let categories: Vec<String> = rows
            .row(item)
            .filter(|&(f, _)| f > offset && f <= offset + vocabulary.len() as u32)
            .map(|(f, _)| vocabulary[(f - offset - 1) as usize].clone())
            .collect();
        if !categories.is_empty() {
            map.insert(model.item_key(item as u32).clone(), categories);
        }
    }
    Ok(ItemCategories(map))
}

/// Past contacts: per (customer, action), how many and the latest day.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactHistory(pub HashMap<(Key, String), (u32, i64)>);

impl ContactHistory {
    /// Records a contact of `customer` with `action` on `day`.
    pub fn add(&mut self, customer: Key, action: &str, day: i64) {
        let entry = self
            .0
            .entry((customer, action.to_string()))
            .or_insert((0, i64::MIN));
        entry.0 += 1;
        entry.1 = entry.1.max(day);
    }

    fn get(&self, customer: &Key, action: &str) -> Option<(u32, i64)> {
        // A borrowed key lookup without allocating would need a custom key type; contacts are
        // few per customer, so the allocation is not worth avoiding.
        self.0.get(&(customer.clone(), action.to_string())).copied()
    }
}

/// Reads the contact history `customer,action,day`, customers being keys of `customers` (the
/// model's user kind); an action the table does not list is an error naming the line (a
/// misspelt id would silently lift its cap).
pub fn read_contacts(
    path: &Path,
    actions: &[Action],
    customers: KeyKind,
) -> Result<ContactHistory, DecideError> {
    let mut reader = CsvReader::open(path, &["customer", "action", "day"], &[])?;
    let mut history = ContactHistory::default();
    while let Some(record) = reader.next_record() {
        let record = record?;
        let action = record.text("action")?;
        if !actions.iter().any(|a| a.id == action) {
            return Err(record.error(
                "action",
                format!("`{action}` is not an action of the actions table"),
            ));
        }
        history.add(
            record.key("customer", customers, "customers")?,
            action,
            record.day("day")?,
        );
    }
    Ok(history)
}

/// Why an action is not offered to a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ineligible {
    /// The customer has every promoted item.
    OwnsItems,
    /// The customer has no item of the action's categories.
    Category,
    /// The customer was contacted with it `contacts` times, the cap.
    Cap {
        /// Contacts so far.
        contacts: u32,
    },
    /// The customer was contacted with it `days_ago` days before today, within the cool-down.
    CoolDown {
        /// Days since the latest contact.
        days_ago: i64,
    },
}

impl std::fmt::Display for Ineligible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ineligible::OwnsItems => write!(f, "has every promoted item"),
            Ineligible::Category => write!(f, "has no item of the action's categories"),
            Ineligible::Cap { contacts } => write!(f, "contacted {contacts} times, the cap"),
            Ineligible::CoolDown { days_ago } => {
                write!(f, "contacted {days_ago} days ago, within the cool-down")
            }
        }
    }
}

/// An action's score for a customer, with its parts.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionScore {
    /// The action's id.
    pub action: String,
    /// The promoted item the propensity is for.
    pub item: Key,
    /// The action's value.
    pub value: f64,
    /// The customer's propensity for the item.
    pub propensity: f64,
    /// 1 (eligible); ineligible actions are listed apart, with their reason.
    pub eligibility: f64,
    /// `value × propensity × eligibility`.
    pub score: f64,
    /// The customer's own items that weigh most in the propensity.
    pub because: Vec<Because>,
}

/// A customer's next best action.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// External customer key.
    pub customer: Key,
    /// The best eligible action (`None`: none is eligible).
    pub best: Option<ActionScore>,
    /// The second best.
    pub runner_up: Option<ActionScore>,
    /// The actions not offered, each with the first rule it failed.
    pub ineligible: Vec<(String, Ineligible)>,
}

/// What next best action is decided with.
#[derive(Debug, Clone)]
pub struct NbaInputs<'a> {
    /// The actions table.
    pub actions: &'a [Action],
    /// Item categories (needed when an action has an allow-list).
    pub categories: &'a ItemCategories,
    /// Past contacts.
    pub contacts: &'a ContactHistory,
    /// Today, as a day number (see [`crate::parse_day`]).
    pub today: i64,
    /// "Because of" items per scored action (0: none).
    pub explain: usize,
    /// Which of a customer's known items count as had (see the module docs).
    pub known: Known,
}

impl NbaInputs<'_> {
    /// Checks the actions against the model and the metadata: every promoted item known to
    /// the model, categories available where an action has an allow-list.
    pub fn check(&self, model: &ExportedModel) -> Result<(), DecideError> {
        model.check_exclusion(self.known)?;
        for action in self.actions {
            for item in &action.items {
                if model.item_index(item).is_err() {
                    return Err(DecideError::Invalid(format!(
                        "action `{}` promotes item {item}, which the model does not know",
                        action.id
                    )));
                }
            }
            if !action.categories.is_empty() && self.categories.0.is_empty() {
                return Err(DecideError::Invalid(format!(
                    "action `{}` has an allow-list of categories: give the item metadata \
                     (item,category) too",
                    action.id
                )));
            }
        }
        Ok(())
    }
}

/// The next best action of `customer` (see the module docs).
pub fn next_best_action(
    model: &ExportedModel,
    customer: Key,
    inputs: &NbaInputs<'_>,
) -> Result<Decision, DecideError> {
    let known: HashSet<Key> = model.known_items(&customer)?.into_iter().collect();
    let had: HashSet<Key> = model
        .left_out_items(&customer, inputs.known)?
        .into_iter()
        .collect();
    let customer_categories: HashSet<&str> = known
        .iter()
        .filter_map(|i| inputs.categories.0.get(i))
        .flatten()
        .map(String::as_str)
        .collect();
    let mut ineligible = Vec::new();
    let mut candidates: Vec<(usize, Vec<&Key>)> = Vec::new();
    for (k, action) in inputs.actions.iter().enumerate() {
        let open: Vec<&Key> = action.items.iter().filter(|&i| !had.contains(i)).collect();
        let contacts = inputs.contacts.get(&customer, &action.id);
        let reason = if open.is_empty() {
            Some(Ineligible::OwnsItems)
        } else if !action.categories.is_empty()
            && !action
                .categories
                .iter()
                .any(|c| customer_categories.contains(c.as_str()))
        {
            Some(Ineligible::Category)
        } else if let (Some(cap), Some((n, _))) = (action.cap, contacts)
            && n >= cap
        {
            Some(Ineligible::Cap { contacts: n })
        } else if let (Some(days), Some((_, last))) = (action.cooldown_days, contacts)
            && inputs.today.saturating_sub(last) < days as i64
        {
            Some(Ineligible::CoolDown {
                days_ago: inputs.today.saturating_sub(last),
            })
        } else {
            None
        };
        match reason {
            Some(reason) => ineligible.push((action.id.clone(), reason)),
            None => candidates.push((k, open)),
        }
    }
    // One propensity query for every open item of the eligible actions.
    let mut items: Vec<Key> = candidates
        .iter()
        .flat_map(|(_, o)| o.iter().map(|&i| i.clone()))
        .collect();
    items.sort_unstable();
    items.dedup();
    let propensity: HashMap<&Key, f64> = items
        .iter()
        .zip(propensities(model, &customer, &items)?)
        .collect();
    let mut scored: Vec<(usize, ActionScore)> = candidates
        .into_iter()
        .map(|(k, open)| {
            let action = &inputs.actions[k];
            let (item, p) = open.iter().map(|&i| (i, propensity[i])).fold(
                (open[0], f64::NEG_INFINITY),
                |best, x| {
                    if x.1 > best.1 || (x.1 == best.1 && x.0 < best.0) {
                        x
                    } else {
                        best
                    }
                },
            );
            (
                k,
                ActionScore {
                    action: action.id.clone(),
                    item: item.clone(),
                    value: action.value,
                    propensity: p,
                    eligibility: 1.0,
                    score: action.value * p,
                    because: Vec::new(),
                },
            )
        })
        .collect();
    scored.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.0.cmp(&b.0)));
    scored.truncate(2);
    let mut scored: Vec<ActionScore> = scored.into_iter().map(|(_, s)| s).collect();
    if inputs.explain > 0 {
        for s in &mut scored {
            s.because = model
                .explain(&customer, std::slice::from_ref(&s.item), inputs.explain)?
                .remove(0);
        }
    }
    let mut scored = scored.into_iter();
    Ok(Decision {
        customer,
        best: scored.next(),
        runner_up: scored.next(),
        ineligible,
    })
}

/// The next best actions of `customers`, one at a time (the inputs checked first).
pub fn next_best_actions<'a, I: IntoIterator<Item = Key> + 'a>(
    model: &'a ExportedModel,
    customers: I,
    inputs: &'a NbaInputs<'a>,
) -> Result<impl Iterator<Item = Result<Decision, DecideError>> + 'a, DecideError> {
    inputs.check(model)?;
    Ok(customers
        .into_iter()
        .map(move |c| next_best_action(model, c, inputs)))
}

/// What a written decision file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NbaSummary {
    /// Customers decided.
    pub customers: usize,
    /// Of them, those with no eligible action (no row written).
    pub without_action: usize,
}

/// Writes decisions as CSV, `customer,rank,action,item,value,propensity,eligibility,score`
/// (`name` after `item` when the model names its items, and `because` with `explain`), rank
/// 1 the best action and 2 the runner-up, under a temporary name renamed into place at the
/// end.
pub fn write_csv(
    decisions: impl Iterator<Item = Result<Decision, DecideError>>,
    destination: &Destination,
    explain: bool,
    names: Option<ItemNames>,
) -> Result<NbaSummary, DecideError> {
    let mut file = AtomicFile::at(destination)?;
    let mut header = vec![
        "customer",
        "rank",
        "action",
        "item",
        "value",
        "propensity",
        "eligibility",
        "score",
    ];
    if names.is_some() {
        header.insert(4, "name");
    }
    if explain {
        header.push("because");
    }
    file.write_row(&header)?;
    let mut summary = NbaSummary {
        customers: 0,
        without_action: 0,
    };
    for decision in decisions {
        let decision = decision?;
        summary.customers += 1;
        summary.without_action += usize::from(decision.best.is_none());
        for (rank, s) in [&decision.best, &decision.runner_up]
            .into_iter()
            .flatten()
            .enumerate()
        {
            let mut row = vec![
                decision.customer.to_string(),
                (rank + 1).to_string(),
                s.action.clone(),
                s.item.to_string(),
                number(s.value),
                number(s.propensity),
                number(s.eligibility),
                number(s.score),
            ];
            if let Some(names) = names {
                row.insert(4, names.name(&s.item).to_owned());
            }
            if explain {
                row.push(because_field(&s.because));
            }
            file.write_row(&row)?;
        }
    }
    file.commit()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_action_tables_name_the_line_and_what_was_expected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("actions.csv");
        let cases = [
            (
                "id,items,value\na,1;2,5\na,3,1\n",
                ":3: column `id`: action `a` is listed twice",
            ),
            (
                "id,items,value\na,1;x,5\n",
                ":2: column `items`: expected item keys separated by `;`: `x` is not an integer \
                 key: the model's items have integer keys",
            ),
            ("id,items,value\na,,5\n", ":2: column `items`: empty"),
            (
                "id,items,value\na,1,-2\n",
                ":2: column `value`: expected a number ≥ 0, got -2",
            ),
            (
                "id,items,value,cap\na,1,2,lots\n",
                ":2: column `cap`: expected a whole number of contacts, got `lots`",
            ),
            (
                "id,items,value,cooldown\na,1,2,3\n",
                ":1: unknown column `cooldown`",
            ),
            ("id,items\n", ":1: no column `value`"),
            (
                "id,items,value\na,1,2,3\n\"b,1,2\n",
                ":3: an unclosed quote",
            ),
        ];
        for (text, expected) in cases {
            std::fs::write(&path, text).unwrap();
            let err = read_actions(&path, KeyKind::Integer)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(err.contains("actions.csv"), "{err}");
        }
        std::fs::write(
            &path,
            "id,items,value,categories,cap,cooldown_days\nx,1;2,5,a; b,2,30\n",
        )
        .unwrap();
        let actions = read_actions(&path, KeyKind::Integer).unwrap();
        assert_eq!(
            actions,
            [Action {
                id: "x".into(),
                items: vec![Key::from(1), Key::from(2)],
                value: 5.0,
                categories: vec!["a".into(), "b".into()],
                cap: Some(2),
                cooldown_days: Some(30),
            }]
        );
        let contacts = dir.path().join("contacts.csv");
        std::fs::write(
            &contacts,
            "customer,action,day\n1,x,2024-01-05\n1,y,2024-01-06\n",
        )
        .unwrap();
        let err = read_contacts(&contacts, &actions, KeyKind::Integer)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("contacts.csv:3: column `action`: `y` is not an action"),
            "{err}"
        );
        std::fs::write(&contacts, "customer,action,day\n1,x,5 Jan\n").unwrap();
        let err = read_contacts(&contacts, &actions, KeyKind::Integer)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":2: column `day`: expected a date YYYY-MM-DD"),
            "{err}"
        );
    }
}
