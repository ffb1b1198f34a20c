//! Batch recommendations: the top `k` items of every customer (or of a list), computed a chunk
//! of users at a time with [`ExportedModel::recommend_many_for`] (which reads an embedding
//! model's item table once per chunk) and handed on one customer at a time, so that memory
//! holds one chunk whatever the number of customers. Each customer's known items are left out
//! (unless [`Known::Include`]), and so are the items of a suppression list, for everyone.

use std::collections::VecDeque;

use crate::destination::Destination;
use crate::names::ItemNames;
use crate::table::AtomicFile;
use crate::{
    DecideError, ExportedModel, Key, Known, Options, Recommendation, because_field, number,
};

/// What a batch asks for.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Items per customer.
    pub k: usize,
    /// Customers scored together (the memory held at a time).
    pub chunk: usize,
    /// Items never to recommend (external keys; keys the model does not know are ignored).
    pub suppress: Vec<Key>,
    /// Whether each customer's known items are left out.
    pub known: Known,
    /// "Because of" items per recommendation (0: none).
    pub explain: usize,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            k: 10,
            chunk: 256,
            suppress: Vec::new(),
            known: Known::Exclude,
            explain: 0,
        }
    }
}

impl BatchOptions {
    fn check(&self) -> Result<(), DecideError> {
        if self.k == 0 {
            return Err(DecideError::Invalid("`k` must be at least 1".into()));
        }
        if self.chunk == 0 {
            return Err(DecideError::Invalid("`chunk` must be at least 1".into()));
        }
        Ok(())
    }
}

/// One customer's recommendations, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecommendations {
    /// External customer (user) key.
    pub user: Key,
    /// The recommended items, best first, each with its score and explanation.
    pub items: Vec<Recommendation>,
}

/// The recommendations of a stream of customers, one at a time (see the module docs).
pub struct BatchRecommendations<'m, I> {
    model: &'m ExportedModel,
    users: I,
    options: BatchOptions,
    ready: VecDeque<UserRecommendations>,
    failed: bool,
}

/// Recommendations for every customer of the model, in the manifest's order.
pub fn recommend_all(
    model: &ExportedModel,
    options: BatchOptions,
) -> Result<BatchRecommendations<'_, impl Iterator<Item = Key> + '_>, DecideError> {
    recommend_users(model, model.user_keys().iter().cloned(), options)
}

/// Recommendations for the customers of `users` (external ids), in their order; an id the
/// model does not know ends the stream with [`crate::InferError::UnknownId`].
pub fn recommend_users<I: IntoIterator<Item = Key>>(
    model: &ExportedModel,
    users: I,
    options: BatchOptions,
) -> Result<BatchRecommendations<'_, I::IntoIter>, DecideError> {
    options.check()?;
    Ok(BatchRecommendations {
        model,
        users: users.into_iter(),
        options,
        ready: VecDeque::new(),
        failed: false,
    })
}

impl<I: Iterator<Item = Key>> Iterator for BatchRecommendations<'_, I> {
    type Item = Result<UserRecommendations, DecideError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.ready.is_empty() {
            let chunk: Vec<Key> = self.users.by_ref().take(self.options.chunk).collect();
            if chunk.is_empty() {
                return None;
            }
            let options = Options {
                exclude: &self.options.suppress,
                known: self.options.known,
                explain: self.options.explain,
            };
            match self
                .model
                .recommend_many_for(&chunk, self.options.k, &options)
            {
                Ok(answers) => self.ready.extend(
                    chunk
                        .into_iter()
                        .zip(answers)
                        .map(|(user, items)| UserRecommendations { user, items }),
                ),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e.into()));
                }
            }
        }
        self.ready.pop_front().map(Ok)
    }
}

/// A customer the model was not trained on (signed up since), given by their items.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCustomer {
    /// Their key (of the model's user key kind).
    pub customer: Key,
    /// Their items, oldest first (keys the model does not know are ignored when scoring).
    pub items: Vec<Key>,
}

/// Reads new customers from a CSV file with the columns `customer` (a key of the model's user
/// kind) and `items` (item keys separated by `;`, oldest first). A customer the model already
/// knows (list them with `--users`), one listed twice, or one without items is an error
/// naming the line.
pub fn read_new_customers(
    path: &std::path::Path,
    model: &ExportedModel,
) -> Result<Vec<NewCustomer>, DecideError> {
    let mut reader = crate::table::CsvReader::open(path, &["customer", "items"], &[])?;
    let mut customers: Vec<NewCustomer> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while let Some(record) = reader.next_record() {
        let record = record?;
        let customer = record.key("customer", model.user_key_kind(), "customers")?;
        if model.user_index(&customer).is_ok() {
            let message = format!(
                "{customer} is a customer of the model, not a new one: recommend for them \
                 with --users"
            );
            return Err(record.error("customer", message));
        }
        if !seen.insert(customer.clone()) {
            return Err(record.error("customer", format!("{customer} is listed twice")));
        }
        let items = record.keys("items", model.item_key_kind(), "items")?;
        if items.is_empty() {
            return Err(record.error("items", "empty, expected item keys separated by `;`"));
        }
        customers.push(NewCustomer { customer, items });
    }
    Ok(customers)
}

/// Recommendations for customers the model was not trained on, from their items: what a
/// history-based model reads, or a dot-product model's fold-in (a model of another kind
/// refuses). Their own items are left out unless `options.known` is [`Known::Include`].
pub fn recommend_new_customers<'m>(
    model: &'m ExportedModel,
    customers: Vec<NewCustomer>,
    options: BatchOptions,
) -> Result<impl Iterator<Item = Result<UserRecommendations, DecideError>> + 'm, DecideError> {
    options.check()?;
    Ok(customers.into_iter().map(move |c| {
        let query = Options {
            exclude: &options.suppress,
            known: options.known,
            explain: options.explain,
        };
        let items = model.recommend_history_for(&c.items, options.k, &query)?;
        Ok(UserRecommendations {
            user: c.customer,
            items,
        })
    }))
}

/// What a written batch holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSummary {
    /// Customers written.
    pub users: usize,
    /// Rows written (customers × items, less where a customer had fewer candidates).
    pub rows: usize,
}

/// Writes `recommendations` to the CSV file `path` (columns `user,rank,item,score`, `name`
/// after `item` when the model names its items, and `because` with `explain`: the explaining
/// items' ids, `;`-separated, strongest first) under a temporary name, renamed into place once
/// every customer is written; on an error nothing is left at `path`.
pub fn write_csv(
    recommendations: impl Iterator<Item = Result<UserRecommendations, DecideError>>,
    destination: &Destination,
    explain: bool,
    names: Option<ItemNames>,
) -> Result<BatchSummary, DecideError> {
    let mut file = AtomicFile::at(destination)?;
    let mut header = vec!["user", "rank", "item", "score"];
    if names.is_some() {
        header.insert(3, "name");
    }
    if explain {
        header.push("because");
    }
    file.write_row(&header)?;
    let mut summary = BatchSummary { users: 0, rows: 0 };
    for answer in recommendations {
        let answer = answer?;
        summary.users += 1;
        for (rank, r) in answer.items.iter().enumerate() {
            let mut row = vec![
                answer.user.to_string(),
                (rank + 1).to_string(),
                r.id.to_string(),
                number(r.score as f64),
            ];
            if let Some(names) = names {
                row.insert(3, names.name(&r.id).to_owned());
            }
            if explain {
                row.push(because_field(&r.because));
            }
            file.write_row(&row)?;
            summary.rows += 1;
        }
    }
    file.commit()?;
    Ok(summary)
}
