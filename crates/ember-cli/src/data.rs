//! `ember data`: inspect or split a data set described by a config.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use ember_data::{Dataset, prepare};
use std::path::{Path, PathBuf};

use crate::train::load_config;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Print the sizes of the data set and its split.
    Stats {
        /// TOML config naming the data, preprocessing and split.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Write the split as TSV files (`train.tsv`, `valid.tsv`, `test.tsv`: user, item, with the
    /// data's own ids) into a new directory.
    Split {
        /// TOML config naming the data, preprocessing and split.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Output directory (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
}

/// `ember data …`.
pub fn run(command: DataCommand) -> Result<()> {
    match command {
        DataCommand::Stats { config } => stats(config.as_deref()),
        DataCommand::Split { config, out } => split(config.as_deref(), &out),
    }
}

/// `ember data stats`.
fn stats(config: Option<&Path>) -> Result<()> {
    let config = load_config(config)?;
    config.data.check_attributes()?;
    let (data, prep) = prepare(&config.data, &config.preprocess, &config.split)?;
    println!("source: {}", config.data.describe());
    let mut stats = serde_json::json!({"preprocess": prep, "dataset": data.stats()});
    let attributes = config
        .data
        .load_attributes(&data.user_ids, &data.item_ids)?;
    for (side, loaded) in [("users", &attributes.users), ("items", &attributes.items)] {
        if let Some(loaded) = loaded {
            let c = &loaded.coverage;
            println!(
                "{side} attributes: {} rows, {} matched, {} not in the interactions; {} {side} \
                 without a row",
                c.rows, c.matched, c.not_in_interactions, c.without_row
            );
            for (column, missing) in &c.missing {
                println!("  {column}: {missing} {side} without a value (the unknown bucket)");
            }
            stats[format!("{side}_attributes")] = serde_json::to_value(c)?;
        }
    }
    println!("{}", serde_json::to_string_pretty(&stats)?);
    Ok(())
}

/// `ember data split`.
fn split(path: Option<&Path>, out: &Path) -> Result<()> {
    let config = load_config(path)?;
    let files = config.data.files();
    let inputs: Vec<&Path> = path
        .into_iter()
        .chain(files.iter().map(PathBuf::as_path))
        .collect();
    ember_decide::Destination::check(
        "--out",
        out,
        ember_decide::OutputKind::Directory,
        &inputs,
        false,
    )?;
    let (data, _) = prepare(&config.data, &config.preprocess, &config.split)?;
    write_split(&data, out)?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Writes the split with external ids, under a temporary name renamed at the end.
fn write_split(data: &Dataset, out: &Path) -> Result<()> {
    if out.exists() {
        bail!("{}: already exists; choose a new directory", out.display());
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
    let partial = parent.join(format!(
        ".{}.partial-{}",
        out.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::create_dir_all(&partial).with_context(|| partial.display().to_string())?;
    let result = (|| -> Result<()> {
        for (file, lists) in [
            ("train.tsv", &data.train),
            ("valid.tsv", &data.valid),
            ("test.tsv", &data.test),
        ] {
            let mut text = String::from("user\titem\n");
            for (u, items) in lists.iter().enumerate() {
                for &i in items {
                    text.push_str(&format!(
                        "{}\t{}\n",
                        data.user_ids.key(u as u32),
                        data.item_ids.key(i)
                    ));
                }
            }
            std::fs::write(partial.join(file), text)?;
        }
        std::fs::rename(&partial, out)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    result
}
