//! `ember recommend`: every (or every listed) customer's top-k items from an exported model,
//! streamed to CSV or Parquet a chunk of customers at a time, so memory holds one chunk (and
//! one Parquet row group) whatever the number of customers.

use anyhow::{Context, Result, bail};
use clap::Args;
use ember_decide::batch::{BatchOptions, UserRecommendations, recommend_all, recommend_users};
use ember_decide::{
    DecideError, Destination, ExportedModel, Key, KeyKind, Known, OutputKind, describe_exclusion,
};
use polars::prelude::{Column, DataFrame, ParquetWriter};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::output::progress;

#[derive(Args)]
pub struct RecommendArgs {
    /// An exported model directory (`ember export`).
    #[arg(long)]
    model: PathBuf,
    /// Items per customer.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Only these customers: a CSV file with a `user` column (default: every customer of the
    /// model).
    #[arg(long)]
    users: Option<PathBuf>,
    /// Customers the model was not trained on instead, given by their items: a CSV file with
    /// the columns `customer` and `items` (item keys separated by `;`, oldest first). Every
    /// kind but AutoRec answers (history models read them; the others fold them in).
    #[arg(long, conflicts_with_all = ["users", "part"])]
    new_customers: Option<PathBuf>,
    /// Items never to recommend to anyone (e.g. sensitive categories): a CSV file with an
    /// `item` column.
    #[arg(long)]
    suppress: Option<PathBuf>,
    /// Which of the items each customer already has (every interaction of the data the model
    /// was trained on) are left out: `all` (the default), `none` (catalogues people buy
    /// again), or `since:YYYY-MM-DD` (only those had on or after that day).
    #[arg(long, value_name = "POLICY")]
    exclude_known: Option<String>,
    /// The same as `--exclude-known none` (kept for older scripts).
    #[arg(long, conflicts_with = "exclude_known")]
    include_known: bool,
    /// Add a `because` column: the N items of the customer's own that weigh most in each
    /// recommendation (`;`-separated, strongest first).
    #[arg(long, default_value_t = 0, value_name = "N")]
    explain: usize,
    /// Customers scored together (the memory held at a time).
    #[arg(long, default_value_t = 256)]
    chunk: usize,
    /// Output file: `.csv` (columns user,rank,item,score[,because]) or `.parquet` (the same
    /// columns, in row groups of about 100,000 rows).
    #[arg(long)]
    out: PathBuf,
    /// Replace `--out` if it exists (never an input, nor a file inside a run or model
    /// directory).
    #[arg(long)]
    force: bool,
    /// Hide the progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Score only part K of N of the customers (consecutive shares, K from 1) and write them
    /// to `--out` with `.part-K-of-N` before its extension. Under `mpirun`/`srun` each rank
    /// takes its own part without this option.
    #[arg(long, value_name = "K/N")]
    part: Option<String>,
}

/// Which share of the customers this process scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Part {
    /// From 1.
    k: usize,
    n: usize,
}

impl Part {
    fn parse(text: &str) -> Result<Self> {
        let parsed = text
            .split_once('/')
            .and_then(|(k, n)| Some((k.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((k, n)) if k >= 1 && k <= n => Ok(Self { k, n }),
            _ => bail!(
                "--part {text}: write K/N with 1 ≤ K ≤ N, e.g. 2/4 for the second of four parts"
            ),
        }
    }

    /// The rank of the MPI job (Open MPI, PMI, Slurm) this process belongs to, when it has
    /// more than one.
    fn of_job() -> Option<Self> {
        let var = |names: &[&str]| {
            names
                .iter()
                .find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok())
        };
        // Slurm: srun's step variables (an sbatch script alone has SLURM_NTASKS too).
        let n = var(&["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"])?;
        let rank = match var(&["OMPI_COMM_WORLD_RANK", "PMI_RANK"]) {
            Some(rank) => rank,
            None => var(&["SLURM_STEP_NUM_TASKS"]).and(var(&["SLURM_PROCID"]))?,
        };
        (n > 1 && rank < n).then_some(Self { k: rank + 1, n })
    }

    /// This part's consecutive share of `users`.
    fn of<T: Clone>(self, users: &[T]) -> Vec<T> {
        let len = users.len();
        users[len * (self.k - 1) / self.n..len * self.k / self.n].to_vec()
    }

    /// `out` with `.part-K-of-N` before its extension.
    fn file(self, out: &Path) -> PathBuf {
        let stem = out.file_stem().unwrap_or_default().to_string_lossy();
        let ext = out.extension().unwrap_or_default().to_string_lossy();
        out.with_file_name(format!("{stem}.part-{}-of-{}.{ext}", self.k, self.n))
    }
}

/// Rows buffered before a Parquet row group is written.
const ROW_GROUP: usize = 100_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_split_the_customers_in_order_and_name_their_files() {
        let users: Vec<i64> = (0..10).collect();
        let parts: Vec<Vec<i64>> = (1..=3).map(|k| Part { k, n: 3 }.of(&users)).collect();
        assert_eq!(parts.concat(), users);
        assert_eq!(parts[0], vec![0, 1, 2]);
        assert_eq!(
            Part { k: 2, n: 3 }.file(Path::new("out/recs.parquet")),
            Path::new("out/recs.part-2-of-3.parquet")
        );
        assert_eq!(Part::parse("2/4").unwrap(), Part { k: 2, n: 4 });
        for bad in ["0/4", "5/4", "2", "a/b"] {
            assert_eq!(
                Part::parse(bad).unwrap_err().to_string(),
                format!(
                    "--part {bad}: write K/N with 1 ≤ K ≤ N, e.g. 2/4 for the second of four parts"
                )
            );
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Csv,
    Parquet,
}

pub fn run(args: RecommendArgs) -> Result<()> {
    let format = match args.out.extension().and_then(|e| e.to_str()) {
        Some("csv") => Format::Csv,
        Some("parquet") => Format::Parquet,
        _ => bail!(
            "--out {}: name a .csv or a .parquet file (the extension picks the format)",
            args.out.display()
        ),
    };
    if args.k == 0 {
        bail!("--k must be at least 1");
    }
    let part = match &args.part {
        Some(text) => Some(Part::parse(text)?),
        None => Part::of_job(),
    };
    let out = match part {
        Some(part) => part.file(&args.out),
        None => args.out.clone(),
    };
    let inputs: Vec<&Path> = [
        Some(args.model.as_path()),
        args.users.as_deref(),
        args.new_customers.as_deref(),
        args.suppress.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let kind = match format {
        Format::Csv => OutputKind::CSV,
        Format::Parquet => OutputKind::PARQUET,
    };
    let destination = Destination::check("--out", &out, kind, &inputs, args.force)?;
    let model = crate::output::load_model(&args.model)?;
    let known = match args.include_known {
        true => Known::Include,
        false => crate::output::exclusion(args.exclude_known.as_deref(), &model)?,
    };
    let suppress = match &args.suppress {
        Some(path) => ember_decide::read_ids(path, "item", model.item_key_kind())?,
        None => Vec::new(),
    };
    let options = BatchOptions {
        k: args.k,
        chunk: args.chunk.max(1),
        suppress,
        known,
        explain: args.explain,
    };
    if let Some(path) = &args.new_customers {
        let customers = ember_decide::batch::read_new_customers(path, &model)?;
        let total = customers.len();
        let stream = ember_decide::batch::recommend_new_customers(&model, customers, options)?;
        let summary = write(stream, &destination, format, args.explain > 0, &model)?;
        println!(
            "wrote {} recommendations for {} of {total} new customers to {}",
            summary.1,
            summary.0,
            out.display()
        );
        println!(
            "excluded: {} (a new customer's known items are the items given)",
            describe_exclusion(known)
        );
        return Ok(());
    }
    let mut listed = match &args.users {
        Some(path) => Some(read_customers(&model, path)?),
        None => None,
    };
    if let Some(part) = part {
        let users = listed.unwrap_or_else(|| model.user_keys().to_vec());
        listed = Some(part.of(&users));
    }
    let total = listed.as_ref().map_or(model.user_ids().len(), Vec::len);
    let show = !args.no_progress && std::io::stderr().is_terminal();
    let bar = progress(total as u64, "recommending", show);
    let explain = args.explain > 0;
    let summary = {
        let tick = |answer: &Result<UserRecommendations, DecideError>| {
            if answer.is_ok() {
                bar.inc(1);
            }
        };
        match listed {
            Some(users) => {
                let stream = recommend_users(&model, users, options)?.inspect(tick);
                write(stream, &destination, format, explain, &model)?
            }
            None => {
                let stream = recommend_all(&model, options)?.inspect(tick);
                write(stream, &destination, format, explain, &model)?
            }
        }
    };
    bar.finish_and_clear();
    println!(
        "wrote {} recommendations for {} customers to {}",
        summary.1,
        summary.0,
        out.display()
    );
    println!("excluded: {}", describe_exclusion(known));
    Ok(())
}

/// Reads the `user` column of `path` and checks every id against the model, so that an
/// unknown customer is named with its row before anything is written.
fn read_customers(model: &ExportedModel, path: &Path) -> Result<Vec<Key>> {
    let users = ember_decide::read_ids(path, "user", model.user_key_kind())?;
    for (row, user) in users.iter().enumerate() {
        if model.user_index(user).is_err() {
            bail!(
                "{}: user {user} (data row {}) is not a customer of the model",
                path.display(),
                row + 1
            );
        }
    }
    Ok(users)
}

fn write(
    stream: impl Iterator<Item = Result<UserRecommendations, DecideError>>,
    destination: &Destination,
    format: Format,
    explain: bool,
    model: &ExportedModel,
) -> Result<(usize, usize)> {
    let out = destination.path();
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
    }
    match format {
        Format::Csv => {
            let names = ember_decide::ItemNames::of(model);
            let s = ember_decide::batch::write_csv(stream, destination, explain, names)?;
            Ok((s.users, s.rows))
        }
        Format::Parquet => {
            let partial = destination.partial();
            let columns = RowsOf {
                kinds: (model.user_key_kind(), model.item_key_kind()),
                explain,
                names: ember_decide::ItemNames::of(model),
            };
            let result = write_parquet(stream, &partial, columns).and_then(|counts| {
                destination.place(&partial)?;
                Ok(counts)
            });
            if result.is_err() {
                let _ = std::fs::remove_file(&partial);
            }
            result
        }
    }
}

/// A column of keys of one kind: Int64 for integer keys, Utf8 for strings.
enum KeyColumn {
    Integers(Vec<i64>),
    Strings(Vec<String>),
}

impl KeyColumn {
    fn new(kind: KeyKind) -> Self {
        match kind {
            KeyKind::Integer => KeyColumn::Integers(Vec::new()),
            KeyKind::String => KeyColumn::Strings(Vec::new()),
        }
    }

    fn len(&self) -> usize {
        match self {
            KeyColumn::Integers(keys) => keys.len(),
            KeyColumn::Strings(keys) => keys.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `key`, of the column's kind (the model's keys are all of one kind).
    fn push(&mut self, key: &Key) {
        match (self, key) {
            (KeyColumn::Integers(keys), Key::Integer(key)) => keys.push(*key),
            (KeyColumn::Strings(keys), Key::String(key)) => keys.push(key.clone()),
            _ => unreachable!("a model's keys are of its key kind"),
        }
    }

    /// The column named `name`, leaving this one empty.
    fn take(&mut self, name: &str) -> Column {
        match self {
            KeyColumn::Integers(keys) => Column::new(name.into(), std::mem::take(keys)),
            KeyColumn::Strings(keys) => Column::new(name.into(), std::mem::take(keys)),
        }
    }
}

/// What the rows of a Parquet file hold: keys of the kinds `(users, items)`, the `because`
/// column with `explain`, the `name` column when the model names its items.
struct RowsOf<'a> {
    kinds: (KeyKind, KeyKind),
    explain: bool,
    names: Option<ember_decide::ItemNames<'a>>,
}

/// The columns of a batch of rows.
struct Rows {
    user: KeyColumn,
    rank: Vec<u32>,
    item: KeyColumn,
    name: Vec<String>,
    score: Vec<f32>,
    because: Vec<String>,
}

impl Rows {
    /// No rows, keys of the kinds `(users, items)`.
    fn new((users, items): (KeyKind, KeyKind)) -> Self {
        Self {
            user: KeyColumn::new(users),
            rank: Vec::new(),
            item: KeyColumn::new(items),
            name: Vec::new(),
            score: Vec::new(),
            because: Vec::new(),
        }
    }

    fn frame(&mut self, of: &RowsOf) -> Result<DataFrame> {
        let mut columns = vec![
            self.user.take("user"),
            Column::new("rank".into(), std::mem::take(&mut self.rank)),
            self.item.take("item"),
        ];
        if of.names.is_some() {
            columns.push(Column::new("name".into(), std::mem::take(&mut self.name)));
        }
        columns.push(Column::new("score".into(), std::mem::take(&mut self.score)));
        if of.explain {
            columns.push(Column::new(
                "because".into(),
                std::mem::take(&mut self.because),
            ));
        }
        let height = columns[0].len();
        Ok(DataFrame::new(height, columns)?)
    }
}

fn write_parquet(
    stream: impl Iterator<Item = Result<UserRecommendations, DecideError>>,
    path: &Path,
    of: RowsOf,
) -> Result<(usize, usize)> {
    let file = std::fs::File::create(path).with_context(|| path.display().to_string())?;
    let schema = Rows::new(of.kinds).frame(&of)?.schema().clone();
    let mut writer = ParquetWriter::new(std::io::BufWriter::new(file)).batched(&schema)?;
    let (mut users, mut written) = (0, 0);
    let mut rows = Rows::new(of.kinds);
    for answer in stream {
        let answer = answer?;
        users += 1;
        for (rank, r) in answer.items.iter().enumerate() {
            rows.user.push(&answer.user);
            rows.rank.push(rank as u32 + 1);
            rows.item.push(&r.id);
            if let Some(names) = of.names {
                rows.name.push(names.name(&r.id).to_owned());
            }
            rows.score.push(r.score);
            if of.explain {
                let ids: Vec<String> = r.because.iter().map(|b| b.item.to_string()).collect();
                rows.because.push(ids.join(";"));
            }
        }
        if rows.user.len() >= ROW_GROUP {
            written += rows.user.len();
            writer.write_batch(&rows.frame(&of)?)?;
        }
    }
    if !rows.user.is_empty() {
        written += rows.user.len();
        writer.write_batch(&rows.frame(&of)?)?;
    }
    writer.finish()?;
    Ok((users, written))
}
