//! Where interactions come from: a configured file (delimited text or Parquet), one of the
//! preset public formats, or the built-in synthetic generator. This module holds the `[data]`
//! table and the dispatch; each kind of file has its own reader: `delimited`, `parquet`,
//! `sequences` and `ncf`.

mod delimited;
mod ncf;
pub(crate) mod odbc;
mod parquet;
pub(crate) mod postgres;
mod sequences;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use ember_spec::KeyType;
use ember_spec::lines::{LineLimit, MAX_LINE_BYTES_VAR};

use self::odbc::{OdbcSpec, read_odbc};
use self::postgres::{EpochUnit, PostgresSpec, QueryColumns, read_postgres};
use delimited::{TableSpec, read_delimited};
use ncf::read_ncf;
use parquet::{guarded, read_parquet};
use sequences::read_sequences;

use crate::encoding::Encoding;
use crate::split::FixedTest;
use crate::synthetic::SyntheticConfig;
use crate::text::shown;
use crate::{DataError, InputFile, Interactions, Result, TimeUnit};

/// A column of a table: by header name, or by 0-based position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Column {
    /// 0-based position (the only choice for a file without a header).
    Index(usize),
    /// Header name.
    Name(String),
}

/// The `[data]` table of a config: the source of interactions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSource {
    /// The built-in seeded generator (the default).
    Synthetic {
        /// Its parameters.
        #[serde(default)]
        synthetic: SyntheticConfig,
    },
    /// A delimited text file (CSV, TSV, any single-character separator, or `::`).
    Delimited {
        /// The file.
        path: PathBuf,
        /// Field separator; `"\t"` for TSV, `"::"` for MovieLens-1M style.
        #[serde(default = "comma")]
        separator: String,
        /// Whether the first line names the columns.
        #[serde(default = "yes")]
        header: bool,
        /// User id column.
        user: Column,
        /// Item id column.
        item: Column,
        /// Rating column, if any.
        #[serde(default)]
        rating: Option<Column>,
        /// Timestamp column, if any.
        #[serde(default)]
        timestamp: Option<Column>,
        /// Weight column (counts, quantities, spend: 0 or more), if any; it may be the rating
        /// column. See [`crate::Weights`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weight: Option<Column>,
        /// The type of the user and item keys: `auto` (default; the type the source has),
        /// `integer` or `string` (zero-padded codes such as `000123` stay as written).
        #[serde(default, skip_serializing_if = "KeyType::is_auto")]
        key_type: KeyType,
        /// The longest line read, in bytes (default `EMBER_MAX_LINE_BYTES`, else 1 MiB): a
        /// longer one is refused with its line, as a file that is not text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_line_bytes: Option<usize>,
        /// The file's encoding: `"utf8"` (the default) or `"latin1"` (each byte one character,
        /// as many exports from older systems write). In UTF-8 a byte that is not UTF-8 is
        /// refused in a column ember reads, and let pass in the others.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encoding: Option<Encoding>,
    },
    /// A Parquet file with named columns.
    Parquet {
        /// The file.
        path: PathBuf,
        /// User id column.
        user: String,
        /// Item id column.
        item: String,
        /// Rating column, if any.
        #[serde(default)]
        rating: Option<String>,
        /// Timestamp column, if any.
        #[serde(default)]
        timestamp: Option<String>,
        /// Weight column (0 or more), if any; it may be the rating column.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weight: Option<String>,
        /// The type of the user and item keys: `auto` (default; the type the source has),
        /// `integer` or `string` (zero-padded codes such as `000123` stay as written).
        #[serde(default, skip_serializing_if = "KeyType::is_auto")]
        key_type: KeyType,
    },
    /// The rows of a PostgreSQL query, streamed with `COPY (query) TO STDOUT`; integer user
    /// and item ids. The password comes from `password_env`'s variable, `PGPASSWORD` or
    /// `~/.pgpass`, never from here.
    Postgres {
        /// Connection string, `postgresql://user@host:port/db?sslmode=require` or
        /// `host=… port=… user=… dbname=…`, without a password.
        url: String,
        /// The query; it must have an `ORDER BY`.
        query: String,
        /// User id column.
        user: String,
        /// Item id column.
        item: String,
        /// Rating column, if any.
        #[serde(default)]
        rating: Option<String>,
        /// Timestamp column (an integer count since 1970-01-01 UTC), if any.
        #[serde(default)]
        timestamp: Option<String>,
        /// What the timestamps count (default seconds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time_unit: Option<EpochUnit>,
        /// Weight column (a number, 0 or more), if any; it may be the rating column.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weight: Option<String>,
        /// The environment variable holding the password, if not `PGPASSWORD` or ~/.pgpass.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password_env: Option<String>,
        /// The type of the user and item keys: `auto` (default; the type the source has),
        /// `integer` or `string` (zero-padded codes such as `000123` stay as written).
        #[serde(default, skip_serializing_if = "KeyType::is_auto")]
        key_type: KeyType,
    },
    /// The rows of a query through an ODBC driver (the `odbc` cargo feature): SAP HANA, SQL
    /// Server, Snowflake and any database with a driver. Columns and values as for
    /// `postgres`; the password comes from `password_env`'s variable, never from here.
    Odbc {
        /// The ODBC connection string without a password, e.g. `Driver={PostgreSQL
        /// Unicode};Server=db;Port=5432;Database=shop;Uid=ember;` or `DSN=shop;`.
        connection: String,
        /// The query; it must have an `ORDER BY`.
        query: String,
        /// User id column.
        user: String,
        /// Item id column.
        item: String,
        /// Rating column, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rating: Option<String>,
        /// Timestamp column (an integer count since 1970-01-01 UTC), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timestamp: Option<String>,
        /// What the timestamps count (default seconds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time_unit: Option<EpochUnit>,
        /// Weight column (a number, 0 or more), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weight: Option<String>,
        /// The environment variable holding the password, if the driver needs one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password_env: Option<String>,
        /// The type of the user and item keys, as for `postgres`.
        #[serde(default, skip_serializing_if = "KeyType::is_auto")]
        key_type: KeyType,
    },
    /// MovieLens-100K `u.data`: `user\titem\trating\ttimestamp`.
    Movielens100k {
        /// Path to `u.data`.
        path: PathBuf,
    },
    /// MovieLens-1M `ratings.dat`: `user::item::rating::timestamp`.
    Movielens1m {
        /// Path to `ratings.dat`.
        path: PathBuf,
    },
    /// The NCF paper's files: `<prefix>.train.rating`, `<prefix>.test.rating` and, when present,
    /// `<prefix>.test.negative`. Use with `[split] kind = "fixed"`.
    Ncf {
        /// Path prefix, e.g. `../shared/datasets/ncf-ml-100k/ml-100k`.
        prefix: PathBuf,
    },
    /// SASRec's `user item` lines, in time order within each user.
    Sasrec {
        /// The file.
        path: PathBuf,
    },
    /// `user item1 item2 …` lines, one user per line, items in time order.
    Sequences {
        /// The file.
        path: PathBuf,
    },
}

fn comma() -> String {
    ",".into()
}
fn yes() -> bool {
    true
}

impl Default for DataSource {
    fn default() -> Self {
        DataSource::Synthetic {
            synthetic: SyntheticConfig::default(),
        }
    }
}

/// What a source yields: interactions, and for the NCF format its own test split.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// All (training) interactions.
    pub interactions: Interactions,
    /// The source's own test split, when it has one.
    pub fixed: Option<FixedTest>,
    /// What the timestamps count, when they are points in time; `None` without timestamps
    /// or when they are only positions in a file (the sequence formats, the synthetic data).
    pub time_unit: Option<TimeUnit>,
    /// The fingerprint of a query's rows, taken as they were read (a PostgreSQL source);
    /// `None` for the other sources, whose files are fingerprinted on their own.
    pub query_rows: Option<InputFile>,
}

impl DataSource {
    /// A short name for logs and reports.
    pub fn describe(&self) -> String {
        match self {
            DataSource::Synthetic { synthetic: s } => {
                format!(
                    "synthetic ({} users, {} items, seed {})",
                    s.users, s.items, s.seed
                )
            }
            DataSource::Delimited { path, .. }
            | DataSource::Parquet { path, .. }
            | DataSource::Movielens100k { path }
            | DataSource::Movielens1m { path }
            | DataSource::Sasrec { path }
            | DataSource::Sequences { path } => path.display().to_string(),
            DataSource::Ncf { prefix } => format!("{}.*", prefix.display()),
            DataSource::Postgres { url, .. } => self::postgres::describe(url),
            DataSource::Odbc { .. } => "an ODBC data source".into(),
        }
    }

    /// The line limit of the source's text files: `data.max_line_bytes` (delimited files), else
    /// `EMBER_MAX_LINE_BYTES`, else 1 MiB.
    fn line_limit(&self) -> Result<LineLimit> {
        let setting = match self {
            DataSource::Delimited {
                max_line_bytes: Some(0),
                ..
            } => {
                return Err(DataError::Invalid(
                    "data.max_line_bytes must be at least 1, got 0".into(),
                ));
            }
            DataSource::Delimited {
                max_line_bytes: Some(bytes),
                ..
            } => {
                return Ok(LineLimit {
                    bytes: *bytes,
                    setting: "data.max_line_bytes",
                });
            }
            DataSource::Delimited { .. } => "data.max_line_bytes",
            _ => MAX_LINE_BYTES_VAR,
        };
        LineLimit::from_env(setting).map_err(|e| DataError::Invalid(e.to_string()))
    }

    /// Whether the source reads a weight column (`weight`).
    pub fn has_weight_column(&self) -> bool {
        matches!(
            self,
            DataSource::Delimited {
                weight: Some(_),
                ..
            } | DataSource::Parquet {
                weight: Some(_),
                ..
            } | DataSource::Postgres {
                weight: Some(_),
                ..
            } | DataSource::Odbc {
                weight: Some(_),
                ..
            }
        )
    }

    /// Reads the source.
    pub fn load(&self) -> Result<Loaded> {
        // Integer timestamps in text are read as Unix seconds, as MovieLens and the NCF files
        // write them.
        let seconds = |interactions: Interactions| {
            let unit = interactions
                .timestamps
                .is_some()
                .then_some(TimeUnit::Seconds);
            (interactions, unit)
        };
        let limit = self.line_limit()?;
        let mut query_rows = None;
        let (interactions, time_unit) = match self {
            DataSource::Synthetic { synthetic } => (synthetic.generate()?, None),
            DataSource::Delimited {
                path,
                separator,
                header,
                user,
                item,
                rating,
                timestamp,
                weight,
                max_line_bytes: _,
                encoding,
                key_type,
            } => {
                let spec = TableSpec {
                    user,
                    item,
                    rating: rating.as_ref(),
                    timestamp: timestamp.as_ref(),
                    weight: weight.as_ref(),
                    key_type: *key_type,
                };
                let text = (limit, Some(encoding.unwrap_or_default()));
                seconds(read_delimited(path, separator, *header, &spec, text)?)
            }
            DataSource::Parquet { path, .. } => guarded(path, || {
                let columns = self.query_columns().expect("named columns");
                read_parquet(path, &columns)
            })?,
            DataSource::Movielens100k { path } => seconds(read_delimited(
                path,
                "\t",
                false,
                &TableSpec::FOUR_COLUMNS,
                (limit, None),
            )?),
            DataSource::Movielens1m { path } => seconds(read_delimited(
                path,
                "::",
                false,
                &TableSpec::FOUR_COLUMNS,
                (limit, None),
            )?),
            DataSource::Ncf { prefix } => return read_ncf(prefix, limit),
            DataSource::Sasrec { path } => (
                read_delimited(path, " ", false, &TableSpec::TWO_COLUMNS, (limit, None))?,
                None,
            ),
            DataSource::Sequences { path } => (read_sequences(path, limit)?, None),
            DataSource::Postgres { time_unit, .. } => {
                let columns = self.query_columns().expect("named columns");
                let spec = self.postgres_spec().expect("a PostgreSQL source");
                let (interactions, unit, read) =
                    read_postgres(spec, &columns, time_unit.unwrap_or_default(), limit)?;
                query_rows = Some(InputFile::of_query(spec, read));
                (interactions, unit)
            }
            DataSource::Odbc { time_unit, .. } => {
                let columns = self.query_columns().expect("named columns");
                let spec = self.odbc_spec().expect("an ODBC source");
                let (interactions, unit, read) =
                    read_odbc(spec, &columns, time_unit.unwrap_or_default(), limit)?;
                query_rows = Some(InputFile::of_odbc(spec, read));
                (interactions, unit)
            }
        };
        Ok(Loaded {
            interactions,
            fixed: None,
            time_unit,
            query_rows,
        })
    }
}

impl DataSource {
    /// The named columns of a Parquet file or a query's result (`None` for the other sources).
    fn query_columns(&self) -> Option<QueryColumns<'_>> {
        let (user, item, rating, timestamp, weight, key_type) = match self {
            DataSource::Parquet {
                user,
                item,
                rating,
                timestamp,
                weight,
                key_type,
                ..
            }
            | DataSource::Postgres {
                user,
                item,
                rating,
                timestamp,
                weight,
                key_type,
                ..
            }
            | DataSource::Odbc {
                user,
                item,
                rating,
                timestamp,
                weight,
                key_type,
                ..
            } => (user, item, rating, timestamp, weight, key_type),
            _ => return None,
        };
        Some(QueryColumns {
            user,
            item,
            rating: rating.as_deref(),
            timestamp: timestamp.as_deref(),
            weight: weight.as_deref(),
            key_type: *key_type,
        })
    }

    /// The connection and query of an ODBC source.
    pub(crate) fn odbc_spec(&self) -> Option<OdbcSpec<'_>> {
        match self {
            DataSource::Odbc {
                connection,
                query,
                password_env,
                ..
            } => Some(OdbcSpec {
                connection,
                query,
                password_env: password_env.as_deref(),
            }),
            _ => None,
        }
    }

    /// The connection and query of a PostgreSQL source.
    pub(crate) fn postgres_spec(&self) -> Option<PostgresSpec<'_>> {
        match self {
            DataSource::Postgres {
                url,
                query,
                password_env,
                ..
            } => Some(PostgresSpec {
                url,
                query,
                password_env: password_env.as_deref(),
            }),
            _ => None,
        }
    }
}

/// The names of a header as a message lists them (each one [`shown`], at most 20).
pub(crate) fn listed(names: &[String]) -> String {
    const LISTED: usize = 20;
    let mut list: Vec<String> = names.iter().take(LISTED).map(|n| shown(n)).collect();
    if names.len() > LISTED {
        list.push(format!("… ({} more)", names.len() - LISTED));
    }
    list.join(", ")
}
