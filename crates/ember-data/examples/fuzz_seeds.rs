//! Writes the seed inputs of the fuzz targets (`crates/ember-data/fuzz`): valid files of
//! every text format and Parquet files written by polars with each column type and
//! compression ember reads.
//!
//!     cargo run --release -p ember-data --example fuzz_seeds -- crates/ember-data/fuzz/corpus
//!
//! A delimited seed's first byte picks the format and settings, as
//! `fuzz/fuzz_targets/delimited.rs` reads it.

use polars::prelude::*;
use std::fs;
use std::path::Path;

/// The first byte of a `delimited` input for a delimited file: separator (an index into the
/// target's list), header, and whether rating and timestamp columns are read.
fn delimited_mode(separator: u8, header: bool, full: bool) -> u8 {
    (separator << 3) | (u8::from(header) << 6) | (u8::from(full) << 7)
}

/// `lines` interactions of 6 users over 5 items, each as `row(user, item, rating, time)`.
fn rows(row: impl Fn(i64, i64, f64, i64) -> String) -> String {
    (0..24)
        .map(|n| row(n % 6 + 1, (n * 7) % 5 + 1, (n % 5 + 1) as f64, 1000 + n))
        .collect()
}

fn text_seeds(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut seeds: Vec<(&str, u8, String)> = vec![
        (
            "csv-header",
            delimited_mode(0, true, true),
            "user,item,rating,timestamp\n".to_string()
                + &rows(|u, i, r, t| format!("{u},{i},{r},{t}\n")),
        ),
        (
            "csv-quoted-crlf-bom",
            delimited_mode(0, true, true),
            "\u{feff}\"user\",\"item\",\"rating\",\"timestamp\"\r\n".to_string()
                + &rows(|u, i, r, t| format!("\"{u}\",{i}.0,\"{r}\",{t}\r\n")),
        ),
        (
            "tsv",
            delimited_mode(1, false, true),
            rows(|u, i, r, t| format!("{u}\t{i}\t{r}\t{t}\n")),
        ),
        (
            "colons",
            delimited_mode(2, false, true),
            rows(|u, i, r, t| format!("{u}::{i}::{r}::{t}\n")),
        ),
        (
            "spaces",
            delimited_mode(3, false, false),
            rows(|u, i, _, _| format!("{u} {i}\n")),
        ),
        (
            "semicolons-extra-columns",
            delimited_mode(4, true, true),
            "title;user;item;rating;timestamp;genre\n".to_string()
                + &rows(|u, i, r, t| format!("t{i};{u};{i};{r};{t};g\n")),
        ),
        (
            "pipes",
            delimited_mode(5, true, false),
            "item|user\n".to_string() + &rows(|u, i, _, _| format!("{i}|{u}\n")),
        ),
        (
            "movielens100k",
            3,
            rows(|u, i, r, t| format!("{u}\t{i}\t{r}\t{t}\n")),
        ),
        (
            "movielens1m",
            4,
            rows(|u, i, r, t| format!("{u}::{i}::{r}::{t}\n")),
        ),
        ("sasrec", 5, rows(|u, i, _, _| format!("{u} {i}\n"))),
        (
            "sequences",
            6,
            "1 5 7 9 3\n2 3 4 5\n3 1 2 3 4 5\n4 9 8 7\n".into(),
        ),
        (
            "ncf",
            7,
            "0\t0\t5\t1\n0\t1\t5\t2\n0\t2\t5\t3\n1\t0\t4\t1\n1\t2\t4\t2\n#0\t3\t5\t9\n1\t1\t4\t9\n#(0,3)\t4\t5\n(1,1)\t4\t1\t3\n"
                .into(),
        ),
    ];
    seeds.push((
        "csv-bad-lines",
        delimited_mode(0, true, true),
        "user,item,rating,timestamp\n1,2,NaN,3\n1,2\n\u{1b}[31m,2,3,4\n".into(),
    ));
    for (name, mode, body) in seeds {
        let mut bytes = vec![mode];
        bytes.extend_from_slice(body.as_bytes());
        fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}

fn parquet_seeds(dir: &Path) -> PolarsResult<()> {
    fs::create_dir_all(dir)?;
    let n = 24;
    let users: Vec<i64> = (0..n).map(|k| k % 6 + 1).collect();
    let items: Vec<i64> = (0..n).map(|k| (k * 7) % 5 + 1).collect();
    let ratings: Vec<f64> = (0..n).map(|k| (k % 5 + 1) as f64).collect();
    let times: Vec<i64> = (0..n).map(|k| 1000 + k).collect();
    let base = df!(
        "user" => &users, "item" => &items, "rating" => &ratings, "timestamp" => &times
    )?;
    let cast = |df: &DataFrame, column: &str, dtype: DataType| -> PolarsResult<DataFrame> {
        let mut df = df.clone();
        df.apply(column, |c| c.cast(&dtype).expect("cast"))?;
        Ok(df)
    };
    let mut frames: Vec<(String, DataFrame)> = vec![
        ("int64".into(), base.clone()),
        ("int32-uint32-float32".into(), {
            let df = cast(&base, "user", DataType::Int32)?;
            let df = cast(&df, "item", DataType::UInt32)?;
            cast(&df, "rating", DataType::Float32)?
        }),
        ("float-ids".into(), {
            let df = cast(&base, "user", DataType::Float64)?;
            cast(&df, "item", DataType::Float32)?
        }),
        ("string-ids".into(), {
            let df = cast(&base, "user", DataType::String)?;
            cast(&df, "item", DataType::String)?
        }),
        (
            "date-timestamps".into(),
            cast(&base, "timestamp", DataType::Date)?,
        ),
        (
            "datetime-timestamps".into(),
            cast(
                &base,
                "timestamp",
                DataType::Datetime(TimeUnit::Milliseconds, None),
            )?,
        ),
        ("uint64-ids".into(), cast(&base, "user", DataType::UInt64)?),
        ("int8-int16".into(), {
            let df = cast(&base, "user", DataType::Int8)?;
            cast(&df, "item", DataType::Int16)?
        }),
    ];
    let fractional: Vec<f64> = (0..n).map(|k| k as f64 / 10.0).collect();
    frames.push((
        "fractional-items".into(),
        df!("user" => &users, "item" => fractional, "rating" => &ratings, "timestamp" => &times)?,
    ));
    let flags: Vec<bool> = (0..n).map(|k| k % 2 == 0).collect();
    frames.push((
        "boolean-users".into(),
        df!("user" => flags, "item" => &items, "rating" => &ratings, "timestamp" => &times)?,
    ));
    let gappy: Vec<Option<i64>> = (0..n).map(|k| (k % 5 != 3).then_some(k)).collect();
    frames.push((
        "nulls".into(),
        df!("user" => gappy, "item" => &items, "rating" => &ratings, "timestamp" => &times)?,
    ));
    let compressions = [
        ("plain", ParquetCompression::Uncompressed),
        ("snappy", ParquetCompression::Snappy),
        ("zstd", ParquetCompression::Zstd(None)),
        ("lz4", ParquetCompression::Lz4Raw),
        ("gzip", ParquetCompression::Gzip(None)),
        ("brotli", ParquetCompression::Brotli(None)),
    ];
    for (name, mut df) in frames {
        for (i, (codec, compression)) in compressions.iter().enumerate() {
            // Every frame uncompressed; each codec once, on a frame of its own.
            if i != 0 && !name.starts_with(['i', 'f']) {
                continue;
            }
            let path = dir.join(format!("{name}-{codec}.parquet"));
            let written = ParquetWriter::new(fs::File::create(&path)?)
                .with_compression(*compression)
                .with_statistics(StatisticsOptions::full())
                .with_row_group_size(Some(10))
                .finish(&mut df);
            if let Err(e) = written {
                // A codec this build of polars lacks.
                eprintln!("{}: {e}", path.display());
                fs::remove_file(&path)?;
            }
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .ok_or("usage: fuzz_seeds <corpus directory>")?;
    let out = Path::new(&out);
    text_seeds(&out.join("delimited"))?;
    parquet_seeds(&out.join("parquet"))?;
    Ok(())
}
