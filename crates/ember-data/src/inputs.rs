//! The inputs a data source reads: files, with absolute paths and fingerprints (size and a hash
//! of the contents), and database queries, with the rows they returned (count and a hash of
//! the rows in the query's order), so that a run can check later, from any working directory,
//! that it reads the data it was trained on.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use ember_spec::lines::{LineLimit, MAX_LINE_BYTES_VAR};

use crate::source::odbc::{OdbcSpec, fingerprint_odbc};
use crate::source::postgres::{PostgresSpec, RowsRead, fingerprint_query, verify_query};
use crate::{DataError, DataSource, Result};

/// One input (a file, or a database query) as it was when fingerprinted. In `inputs.json` a
/// file has `path`, `bytes` and `hash`; a query has `url`, `query`, `rows`, `bytes` and `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InputFile {
    /// A file.
    File {
        /// Absolute path.
        path: PathBuf,
        /// Size in bytes.
        bytes: u64,
        /// FNV-1a (64-bit) of the contents, as `fnv1a64:<16 hex digits>`.
        hash: String,
    },
    /// The rows of a PostgreSQL query.
    Postgres {
        /// The connection string (it never holds a password: one is refused).
        url: String,
        /// The query.
        query: String,
        /// The variable the password was read from, when not `PGPASSWORD` or ~/.pgpass.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password_env: Option<String>,
        /// Rows returned.
        rows: u64,
        /// Bytes of the rows as `COPY … TO STDOUT` writes them.
        bytes: u64,
        /// FNV-1a (64-bit) of those bytes, in the query's order, as `fnv1a64:<16 hex digits>`.
        hash: String,
    },
    /// The rows of an ODBC query, as `COPY`'s text lines would hold them.
    Odbc {
        /// The connection string (it never holds a password: one is refused).
        connection: String,
        /// The query.
        query: String,
        /// The variable the password was read from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password_env: Option<String>,
        /// Rows returned.
        rows: u64,
        /// Bytes of the rows as text lines.
        bytes: u64,
        /// FNV-1a (64-bit) of those bytes, as `fnv1a64:<16 hex digits>`.
        hash: String,
    },
}

impl DataSource {
    /// Makes every path of the source absolute, relative to `base` (the working directory the
    /// config was given in), so that the source reads the same files from anywhere.
    pub fn make_absolute(&mut self, base: &Path) {
        let path = match self {
            DataSource::Synthetic { .. }
            | DataSource::Postgres { .. }
            | DataSource::Odbc { .. } => return,
            DataSource::Ncf { prefix } => prefix,
            DataSource::Delimited { path, .. }
            | DataSource::Parquet { path, .. }
            | DataSource::Movielens100k { path }
            | DataSource::Movielens1m { path }
            | DataSource::Sasrec { path }
            | DataSource::Sequences { path } => path,
        };
        if path.is_relative() {
            // `absolute` does not resolve links: the path stays the one the user wrote.
            *path = std::path::absolute(base.join(&*path)).unwrap_or_else(|_| base.join(&*path));
        }
    }

    /// The files the source reads (those that exist, for the NCF format's optional negatives).
    pub fn files(&self) -> Vec<PathBuf> {
        match self {
            DataSource::Synthetic { .. }
            | DataSource::Postgres { .. }
            | DataSource::Odbc { .. } => vec![],
            DataSource::Ncf { prefix } => [".train.rating", ".test.rating", ".test.negative"]
                .iter()
                .map(|suffix| {
                    let mut p = prefix.as_os_str().to_owned();
                    p.push(suffix);
                    PathBuf::from(p)
                })
                .filter(|p| p.exists() || !p.to_string_lossy().ends_with(".negative"))
                .collect(),
            DataSource::Delimited { path, .. }
            | DataSource::Parquet { path, .. }
            | DataSource::Movielens100k { path }
            | DataSource::Movielens1m { path }
            | DataSource::Sasrec { path }
            | DataSource::Sequences { path } => vec![path.clone()],
        }
    }

    /// Fingerprints every file the source reads, or the rows of its query (which runs it).
    pub fn fingerprint(&self) -> Result<Vec<InputFile>> {
        if let Some(spec) = self.postgres_spec() {
            let read = fingerprint_query(spec, query_line_limit()?)?;
            return Ok(vec![InputFile::of_query(spec, read)]);
        }
        if let Some(spec) = self.odbc_spec() {
            let read = fingerprint_odbc(spec, query_line_limit()?)?;
            return Ok(vec![InputFile::of_odbc(spec, read)]);
        }
        self.fingerprint_files()
    }

    /// Fingerprints every file the source reads (none for a query).
    pub(crate) fn fingerprint_files(&self) -> Result<Vec<InputFile>> {
        self.files().iter().map(|p| fingerprint(p)).collect()
    }
}

impl InputFile {
    /// The fingerprint of the rows `read` that `spec`'s ODBC query returned.
    pub(crate) fn of_odbc(spec: OdbcSpec, read: RowsRead) -> Self {
        InputFile::Odbc {
            connection: spec.connection.into(),
            query: spec.query.into(),
            password_env: spec.password_env.map(Into::into),
            rows: read.rows,
            bytes: read.bytes,
            hash: read.hash_text(),
        }
    }

    /// The fingerprint of the rows `read` that `spec`'s query returned.
    pub(crate) fn of_query(spec: PostgresSpec, read: RowsRead) -> Self {
        InputFile::Postgres {
            url: spec.url.into(),
            query: spec.query.into(),
            password_env: spec.password_env.map(Into::into),
            rows: read.rows,
            bytes: read.bytes,
            hash: read.hash_text(),
        }
    }
}

/// The line limit of a query's rows (`EMBER_MAX_LINE_BYTES`, else 1 MiB).
fn query_line_limit() -> Result<LineLimit> {
    LineLimit::from_env(MAX_LINE_BYTES_VAR).map_err(|e| DataError::Invalid(e.to_string()))
}

/// The size and hash of the file at `path`, which must be a regular file: a device or a pipe
/// cannot be read twice alike, and `/dev/zero` would be hashed forever.
pub fn fingerprint(path: &Path) -> Result<InputFile> {
    let io = |source| DataError::Io {
        path: path.to_owned(),
        source,
    };
    // Looked at before opening: opening a named pipe waits for a writer.
    let kind = std::fs::metadata(path).map_err(io)?.file_type();
    if !kind.is_file() {
        return Err(DataError::NotAFile {
            path: path.to_owned(),
            kind: kind_of(kind),
        });
    }
    let mut file = File::open(path).map_err(io)?;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut bytes = 0u64;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(io)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        for &byte in &buffer[..n] {
            hash ^= byte as u64;
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    Ok(InputFile::File {
        path: path.to_owned(),
        bytes,
        hash: format!("fnv1a64:{hash:016x}"),
    })
}

/// What a file that is not a regular file is, in words.
#[cfg(unix)]
fn kind_of(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_fifo() {
        "a named pipe (FIFO)"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn kind_of(kind: std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else {
        "a special file"
    }
}

/// Checks that every recorded input is still what it was (a query is run again).
pub fn verify(recorded: &[InputFile]) -> Result<()> {
    for was in recorded {
        match was {
            InputFile::File { path, bytes, hash } => verify_file(path, *bytes, hash)?,
            InputFile::Postgres {
                url,
                query,
                password_env,
                rows,
                bytes,
                hash,
            } => {
                let spec = PostgresSpec {
                    url,
                    query,
                    password_env: password_env.as_deref(),
                };
                let was = rows_read(*rows, *bytes, hash);
                verify_query(spec, was, query_line_limit()?)?;
            }
            InputFile::Odbc {
                connection,
                query,
                password_env,
                rows,
                bytes,
                hash,
            } => {
                let spec = OdbcSpec {
                    connection,
                    query,
                    password_env: password_env.as_deref(),
                };
                let was = rows_read(*rows, *bytes, hash);
                let now = fingerprint_odbc(spec, query_line_limit()?)?;
                if now != was {
                    return Err(DataError::Invalid(format!(
                        "the ODBC query's rows changed since the run read them (data.query: \
                         {} rows, {} then; {} rows, {} now): train again on the new rows",
                        was.rows,
                        was.hash_text(),
                        now.rows,
                        now.hash_text()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// A recorded query's rows read back from `inputs.json`.
fn rows_read(rows: u64, bytes: u64, hash: &str) -> RowsRead {
    // A hash that is not ours cannot match: 0 stands for it.
    let hash = hash
        .strip_prefix("fnv1a64:")
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or(0);
    RowsRead { rows, bytes, hash }
}

/// Checks that the file at `path` still has `bytes` bytes hashing to `hash`.
fn verify_file(path: &Path, bytes: u64, hash: &str) -> Result<()> {
    let changed = |now: String| DataError::Changed {
        path: path.to_owned(),
        was: format!("{bytes} bytes, {hash}"),
        now,
    };
    if !path.exists() {
        return Err(changed("the file is missing".into()));
    }
    match fingerprint(path)? {
        InputFile::File {
            bytes: now_bytes,
            hash: now_hash,
            ..
        } if now_bytes != bytes || now_hash != hash => {
            Err(changed(format!("{now_bytes} bytes, {now_hash}")))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_of_known_strings() {
        // Reference values of 64-bit FNV-1a (http://www.isthe.com/chongo/tech/comp/fnv/).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        std::fs::write(&path, "").unwrap();
        let of = |path: &Path| match fingerprint(path).unwrap() {
            InputFile::File { bytes, hash, .. } => (bytes, hash),
            other => panic!("{other:?}"),
        };
        assert_eq!(of(&path), (0, "fnv1a64:cbf29ce484222325".into()));
        std::fs::write(&path, "a").unwrap();
        assert_eq!(of(&path), (1, "fnv1a64:af63dc4c8601ec8c".into()));
        std::fs::write(&path, "foobar").unwrap();
        assert_eq!(of(&path), (6, "fnv1a64:85944171f73967e8".into()));
    }

    #[test]
    fn a_changed_or_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.data");
        std::fs::write(&path, "1\t2\t3\t4\n").unwrap();
        let recorded = vec![fingerprint(&path).unwrap()];
        verify(&recorded).unwrap();
        std::fs::write(&path, "1\t2\t5\t4\n").unwrap();
        let err = verify(&recorded).unwrap_err().to_string();
        assert!(
            err.contains(
                "u.data: the data changed since the run was trained (then 8 bytes, fnv1a64:"
            ) && err.contains("; now 8 bytes, fnv1a64:"),
            "{err}"
        );
        std::fs::remove_file(&path).unwrap();
        let err = verify(&recorded).unwrap_err().to_string();
        assert!(err.contains("now the file is missing"), "{err}");
    }

    #[test]
    fn relative_paths_become_absolute() {
        let mut source = DataSource::Ncf {
            prefix: "data/ml-100k".into(),
        };
        source.make_absolute(Path::new("/home/me/work"));
        assert_eq!(
            source,
            DataSource::Ncf {
                prefix: "/home/me/work/data/ml-100k".into()
            }
        );
    }
}
