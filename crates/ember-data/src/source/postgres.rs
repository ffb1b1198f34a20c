//! PostgreSQL: interactions from a query, streamed with `COPY (<query>) TO STDOUT` (text
//! format) and parsed row by row into the same [`Interactions`] the delimited reader makes from
//! the same values in a file. The copied bytes are hashed as they pass, so that `inputs.json`
//! can record the rows a run was trained on.
//!
//! The password never comes from the config (which is written to the run directory): it comes
//! from the variable `password_env` names, else `PGPASSWORD`, else `~/.pgpass` (or
//! `PGPASSFILE`), as libpq reads them. TLS goes through rustls, checking the server's
//! certificate against the system's roots (`SSL_CERT_FILE` / `SSL_CERT_DIR` add more).

use std::borrow::Cow;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ember_spec::KeyType;
use ember_spec::lines::{LineLimit, Lines, TextError};
use postgres::config::Host;
use postgres::types::Type;
use postgres::{Client, Config};
use serde::{Deserialize, Serialize};

use crate::keys::KeyColumn;
use crate::text::{Expect, bad_key, bad_value, parse_integer, parse_rating, parse_weight, shown};
use crate::{Interactions, TimeUnit};

/// What an integer timestamp column counts (the `time_unit` of a PostgreSQL source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpochUnit {
    /// Unix seconds (the default, as in text files).
    #[default]
    Seconds,
    /// Milliseconds since 1970-01-01 UTC.
    Milliseconds,
    /// Microseconds since 1970-01-01 UTC.
    Microseconds,
    /// Nanoseconds since 1970-01-01 UTC.
    Nanoseconds,
    /// Days since 1970-01-01.
    Days,
}

impl From<EpochUnit> for TimeUnit {
    fn from(unit: EpochUnit) -> Self {
        match unit {
            EpochUnit::Seconds => TimeUnit::Seconds,
            EpochUnit::Milliseconds => TimeUnit::Milliseconds,
            EpochUnit::Microseconds => TimeUnit::Microseconds,
            EpochUnit::Nanoseconds => TimeUnit::Nanoseconds,
            EpochUnit::Days => TimeUnit::Days,
        }
    }
}

/// Everything that can go wrong reading from PostgreSQL. No message holds the password, and
/// none holds `data.url` (which could, when it is refused for holding one).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// `data.url` does not parse.
    #[error("data.url is not a PostgreSQL connection string: {0}")]
    BadUrl(String),
    /// `data.url` holds a password.
    #[error(
        "data.url holds a password: ember never takes one from the config (the config is copied into the run directory); set PGPASSWORD, add a line to ~/.pgpass, or name an environment variable in data.password_env"
    )]
    PasswordInUrl,
    /// `data.password_env` names a variable that is not set.
    #[error("data.password_env names `{0}`, which is not set (or not valid UTF-8)")]
    PasswordEnvUnset(String),
    /// The query has no `ORDER BY`.
    #[error(
        "data.query has no ORDER BY: a query's rows come in no set order unless it gives one, and ember keeps the order of rows with equal timestamps, so the same table could train differently; add e.g. `ORDER BY <user>, <timestamp>, <item>`"
    )]
    NoOrderBy,
    /// The server cannot be reached.
    #[error("cannot reach the PostgreSQL server at {server}: {message}")]
    Unreachable {
        /// Host and port.
        server: String,
        /// Why, as the OS or the TLS layer says.
        message: String,
    },
    /// The server refused the login.
    #[error("the PostgreSQL server at {server} refused the login of user `{user}`: {message}")]
    Refused {
        /// Host and port.
        server: String,
        /// The user.
        user: String,
        /// The server's reason (it never holds the password).
        message: String,
    },
    /// The server refused the query.
    #[error("the PostgreSQL server at {server} refused data.query: {message}")]
    Sql {
        /// Host and port.
        server: String,
        /// The server's message.
        message: String,
    },
    /// What an ODBC driver said (the ODBC source shares this reader's checks and messages).
    #[error("the ODBC data source: {0}")]
    Odbc(String),
    /// A query's result without a column it is configured to read.
    #[error("data.query returns no column `{column}` (it returns: {available})")]
    MissingColumn {
        /// The column asked for.
        column: String,
        /// The columns the query returns.
        available: String,
    },
    /// A column has a type ember cannot read as asked.
    #[error("data.query's column `{column}` ({role}) is of type {found}: {expected}")]
    ColumnType {
        /// The column.
        column: String,
        /// What it was asked to hold (user, item, rating, timestamp).
        role: &'static str,
        /// Its SQL type.
        found: String,
        /// What ember reads from it.
        expected: String,
    },
    /// A value of a row is not what ember reads from it.
    #[error("data.query, row {row}, column `{column}`: {message}")]
    Value {
        /// 1-based row number, in the query's order.
        row: usize,
        /// The column.
        column: String,
        /// What was expected and what was found.
        message: String,
    },
    /// The query returned no rows.
    #[error("data.query returned no rows from the PostgreSQL server at {server}: no interactions")]
    Empty {
        /// Host and port.
        server: String,
    },
    /// The connection broke while the rows were read.
    #[error(
        "the connection to the PostgreSQL server at {server} was lost after {rows} rows of data.query: {message}"
    )]
    Cut {
        /// Host and port.
        server: String,
        /// Rows read before.
        rows: usize,
        /// Why.
        message: String,
    },
    /// A row is longer than the line limit.
    #[error("data.query, row {row}: {message}")]
    LongRow {
        /// 1-based row number.
        row: usize,
        /// The limit's message.
        message: String,
    },
    /// The query's rows are not those the run was trained on.
    #[error(
        "the table changed since the run was trained (then {was}; now {now}): data.query `{query}` on the PostgreSQL server at {server} no longer returns the same rows; restore them, or train a new run on the new data"
    )]
    Changed {
        /// Host and port.
        server: String,
        /// The query.
        query: String,
        /// Rows and hash then.
        was: String,
        /// Rows and hash now.
        now: String,
    },
}

type Result<T, E = PostgresError> = std::result::Result<T, E>;

/// A PostgreSQL source as the config gives it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PostgresSpec<'a> {
    pub(crate) url: &'a str,
    pub(crate) query: &'a str,
    pub(crate) password_env: Option<&'a str>,
}

/// Which columns of the query hold what.
pub(crate) struct QueryColumns<'a> {
    pub(super) user: &'a str,
    pub(super) item: &'a str,
    pub(super) rating: Option<&'a str>,
    pub(super) timestamp: Option<&'a str>,
    /// Weight column (counts, quantities, spend), if any.
    pub(super) weight: Option<&'a str>,
    /// The declared type of the user and item keys.
    pub(super) key_type: KeyType,
}

/// The rows a query returned: how many, and the FNV-1a (64-bit) of the bytes `COPY` sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowsRead {
    /// Rows.
    pub rows: u64,
    /// Bytes of `COPY`'s text output.
    pub bytes: u64,
    /// FNV-1a (64-bit) of those bytes.
    pub hash: u64,
}

impl RowsRead {
    /// `N rows, fnv1a64:<hex>`, as messages and `inputs.json` show it.
    pub fn hash_text(&self) -> String {
        format!("fnv1a64:{:016x}", self.hash)
    }
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    bytes: u64,
    hash: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        for &byte in &buf[..n] {
            self.hash ^= byte as u64;
            self.hash = self.hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Ok(n)
    }
}

/// `PostgreSQL host H, port P`, for logs: the server `url` names, without anything else of it.
pub(super) fn describe(url: &str) -> String {
    match Config::from_str(url) {
        Ok(config) => format!("PostgreSQL {} (data.query)", server_of(&config)),
        Err(_) => "PostgreSQL (data.url)".into(),
    }
}

/// `host H, port P` of the first host the config names (the one tried first).
fn server_of(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(dir)) => dir.display().to_string(),
        None => "(no host)".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("host {host}, port {port}")
}

/// Parses `data.url`, refusing a password in it, and adds the password from the environment
/// or `~/.pgpass`.
fn connection_config(spec: PostgresSpec) -> Result<Config> {
    // The parser's messages name the option at fault, never the whole string.
    let mut config = Config::from_str(spec.url).map_err(|e| PostgresError::BadUrl(said(&e)))?;
    if config.get_password().is_some() {
        return Err(PostgresError::PasswordInUrl);
    }
    if config.get_connect_timeout().is_none() {
        // A host that drops packets would otherwise hold the run forever.
        config.connect_timeout(Duration::from_secs(30));
    }
    if let Some(password) = password(spec.password_env, &config)? {
        config.password(password);
    }
    Ok(config)
}

/// The password: from `password_env`'s variable, else `PGPASSWORD`, else the password file.
fn password(password_env: Option<&str>, config: &Config) -> Result<Option<String>> {
    if let Some(name) = password_env {
        return std::env::var(name)
            .map(Some)
            .map_err(|_| PostgresError::PasswordEnvUnset(name.into()));
    }
    if let Ok(password) = std::env::var("PGPASSWORD") {
        return Ok(Some(password));
    }
    let file = match std::env::var_os("PGPASSFILE") {
        Some(file) => PathBuf::from(file),
        None => match std::env::var_os("HOME") {
            Some(home) => Path::new(&home).join(".pgpass"),
            None => return Ok(None),
        },
    };
    Ok(pgpass_lookup(&file, config))
}

/// The password `file` (libpq's format) gives for the config's first host, port, database
/// and user; `None` when it gives none, is missing, or can be read by others than its owner
/// (libpq ignores such a file, with a warning).
fn pgpass_lookup(file: &Path, config: &Config) -> Option<String> {
    let metadata = std::fs::metadata(file).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "warning: password file {} has group or world access; ignored (chmod 0600 it)",
                file.display()
            );
            return None;
        }
    }
    let text = std::fs::read_to_string(file).ok()?;
    let (hosts, port) = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => (vec![name.clone()], config.get_ports().first()),
        // libpq matches a socket connection by `localhost` and by the socket's directory.
        Some(Host::Unix(dir)) => (
            vec!["localhost".into(), dir.display().to_string()],
            config.get_ports().first(),
        ),
        None => return None,
    };
    let port = port.copied().unwrap_or(5432).to_string();
    let user = config.get_user().unwrap_or_default();
    let db = config.get_dbname().unwrap_or(user);
    text.lines()
        .filter_map(pgpass_fields)
        .find(|[h, p, d, u, _]| {
            let matches = |field: &str, value: &str| field == "*" || field == value;
            hosts.iter().any(|host| matches(h, host))
                && matches(p, &port)
                && matches(d, db)
                && matches(u, user)
        })
        .map(|[_, _, _, _, password]| password)
}

/// The five fields of a `.pgpass` line (`host:port:database:user:password`, `\:` and `\\`
/// escaped); `None` for a comment or a line with fewer fields.
pub(crate) fn pgpass_fields(line: &str) -> Option<[String; 5]> {
    if line.starts_with('#') {
        return None;
    }
    let mut fields: Vec<String> = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut()?.extend(chars.next()),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut()?.push(c),
        }
    }
    fields.try_into().ok()
}

/// The TLS connector: rustls on ring, with the system's roots.
fn tls() -> tokio_postgres_rustls::MakeRustlsConnect {
    let mut roots = rustls::RootCertStore::empty();
    // A certificate the store cannot parse is skipped, as libpq's OpenSSL skips it.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

/// What the server (or the client library) said, with the server's detail and hint.
fn said(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut message = format!("{}: {}", db.severity(), db.message());
            if let Some(detail) = db.detail() {
                message.push_str(&format!(" ({detail})"));
            }
            if let Some(hint) = db.hint() {
                message.push_str(&format!("; hint: {hint}"));
            }
            message
        }
        None => {
            use std::error::Error;
            match error.source() {
                Some(cause) => format!("{error}: {cause}"),
                None => error.to_string(),
            }
        }
    }
}

/// Connects, telling a server that cannot be reached from one that refuses the login.
fn connect(spec: PostgresSpec) -> Result<(Client, String)> {
    check_order_by(spec.query)?;
    let config = connection_config(spec)?;
    let server = server_of(&config);
    let client = config.connect(tls()).map_err(|e| {
        let message = said(&e);
        match e.as_db_error() {
            // Class 28: invalid authorization specification (bad password, no such role, a
            // pg_hba.conf rule).
            Some(db) if db.code().code().starts_with("28") => PostgresError::Refused {
                server: server.clone(),
                user: config.get_user().unwrap_or_default().into(),
                message,
            },
            Some(_) => PostgresError::Sql {
                server: server.clone(),
                message,
            },
            None if message.starts_with("invalid configuration: password missing") => {
                PostgresError::Refused {
                    server: server.clone(),
                    user: config.get_user().unwrap_or_default().into(),
                    message: "the server asks for a password and none was given: set PGPASSWORD, \
                          add a line to ~/.pgpass, or name an environment variable in \
                          data.password_env"
                        .into(),
                }
            }
            // `user missing`, `host missing`: what the url leaves out.
            None if message.starts_with("invalid configuration") => PostgresError::BadUrl(message),
            None => PostgresError::Unreachable {
                server: server.clone(),
                message,
            },
        }
    })?;
    Ok((client, server))
}

/// The query as `COPY` takes it: without the `;` and spaces a query typed by hand often ends in.
fn copy_statement(query: &str) -> String {
    let query = query.trim_end().trim_end_matches(';').trim_end();
    // The line break ends a `--` comment the query may close with.
    format!("COPY ({query}\n) TO STDOUT")
}

/// Streams the query's rows through `row` (its 1-based number and its text, without the line
/// break), hashing the bytes as they come.
fn stream_rows(
    client: &mut Client,
    server: &str,
    query: &str,
    limit: LineLimit,
    mut row: impl FnMut(usize, &[u8]) -> Result<()>,
) -> Result<RowsRead> {
    let sql = |e: postgres::Error| PostgresError::Sql {
        server: server.into(),
        message: said(&e),
    };
    let reader = client
        .copy_out(copy_statement(query).as_str())
        .map_err(sql)?;
    let mut hashing = Hashing {
        inner: reader,
        bytes: 0,
        hash: 0xcbf2_9ce4_8422_2325,
    };
    let mut lines = Lines::new(BufReader::with_capacity(1 << 16, &mut hashing), limit);
    let (mut line, mut rows) = (Vec::new(), 0usize);
    while let Some(number) = lines.next_into(&mut line) {
        let number = number.map_err(|e| match e {
            TextError::Io(e) => PostgresError::Cut {
                server: server.into(),
                rows,
                // The copy reader wraps the client's error, whose own text is only its kind.
                message: match e
                    .get_ref()
                    .and_then(|e| e.downcast_ref::<postgres::Error>())
                {
                    Some(inner) => said(inner),
                    None => e.to_string(),
                },
            },
            e => PostgresError::LongRow {
                row: e.line().unwrap_or(rows + 1),
                message: e.to_string(),
            },
        })?;
        row(number, &line)?;
        rows = number;
    }
    Ok(RowsRead {
        rows: rows as u64,
        bytes: hashing.bytes,
        hash: hashing.hash,
    })
}

/// Runs the query and returns how many rows it gives and their hash, without keeping them.
pub(crate) fn fingerprint_query(spec: PostgresSpec, limit: LineLimit) -> Result<RowsRead> {
    let (mut client, server) = connect(spec)?;
    stream_rows(&mut client, &server, spec.query, limit, |_, _| Ok(()))
}

/// Checks that the query's rows are those recorded (`was`).
pub(crate) fn verify_query(spec: PostgresSpec, was: RowsRead, limit: LineLimit) -> Result<()> {
    let (mut client, server) = connect(spec)?;
    let now = stream_rows(&mut client, &server, spec.query, limit, |_, _| Ok(()))?;
    if now.rows == was.rows && now.bytes == was.bytes && now.hash == was.hash {
        return Ok(());
    }
    let shown = |r: RowsRead| format!("{} rows, {}", r.rows, r.hash_text());
    Err(PostgresError::Changed {
        server,
        query: shown_query(spec.query),
        was: shown(was),
        now: shown(now),
    })
}

/// The query as a message shows it: on one line, cut at 200 characters.
fn shown_query(query: &str) -> String {
    let one_line = query.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::text::shown_cut(&one_line, 200)
}

/// Reads the query's rows into interactions (with the timestamps' unit, when there are
/// timestamps), and what they were: the rows are hashed as they are read, so that fingerprinting
/// a run's data does not run the query a second time.
pub(super) fn read_postgres(
    spec: PostgresSpec,
    columns: &QueryColumns,
    unit: EpochUnit,
    limit: LineLimit,
) -> Result<(Interactions, Option<TimeUnit>, RowsRead)> {
    let (mut client, server, found) = prepared(spec)?;
    let positions = Positions::resolve(&found, columns)?;
    let (out, read) = positions.collect(|push| {
        stream_rows(&mut client, &server, spec.query, limit, |row, line| {
            push(row, line)
        })
    })?;
    if out.is_empty() {
        return Err(PostgresError::Empty { server });
    }
    let unit = out.timestamps.is_some().then_some(unit.into());
    Ok((out, unit, read))
}

/// Connects and prepares the query: the client, the server as messages name it, and the
/// result's column names and types.
fn prepared(spec: PostgresSpec) -> Result<(Client, String, Vec<(String, Type)>)> {
    let (mut client, server) = connect(spec)?;
    let statement = client
        .prepare(spec.query.trim_end().trim_end_matches(';'))
        .map_err(|e| PostgresError::Sql {
            server: server.clone(),
            message: said(&e),
        })?;
    let found = statement
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.type_().clone()))
        .collect();
    Ok((client, server, found))
}

/// A query's rows as text, for a table ember reads by column name (an attribute table): the
/// result's column names, each row's 1-based number and fields (`None` for NULL, escapes
/// undone), and what was read. The query must have an `ORDER BY`.
pub(crate) type TextRows = (Vec<String>, Vec<(usize, Vec<Option<String>>)>, RowsRead);

/// Reads `spec`'s query as [`TextRows`].
pub(crate) fn read_text_rows(spec: PostgresSpec, limit: LineLimit) -> Result<TextRows> {
    check_order_by(spec.query)?;
    let (mut client, server, found) = prepared(spec)?;
    let names: Vec<String> = found.into_iter().map(|(name, _)| name).collect();
    let mut rows = Vec::new();
    let read = stream_rows(&mut client, &server, spec.query, limit, |row, line| {
        let text = String::from_utf8_lossy(line);
        let fields = text
            .split('\t')
            .map(|f| (f != "\\N").then(|| unescaped(f).into_owned()))
            .collect();
        rows.push((row, fields));
        Ok(())
    })?;
    if rows.is_empty() {
        return Err(PostgresError::Empty { server });
    }
    Ok((names, rows, read))
}

/// Where the configured columns are in the query's result, and their names. The ODBC source
/// reads its rows through this too: its columns' types as the PostgreSQL types that hold the
/// same values, its rows as `COPY`'s text lines.
pub(super) struct Positions<'a> {
    user: (usize, &'a str),
    item: (usize, &'a str),
    rating: Option<(usize, &'a str)>,
    timestamp: Option<(usize, &'a str)>,
    weight: Option<(usize, &'a str)>,
    /// How the user and item columns are read: as integers (an integer column, or a text
    /// column declared integer) or as strings.
    key_types: [KeyType; 2],
}

const INTEGERS: [Type; 3] = [Type::INT2, Type::INT4, Type::INT8];

impl<'a> Positions<'a> {
    /// Finds each configured column among the result's `(name, type)` and checks its type.
    pub(super) fn resolve(found: &[(String, Type)], wanted: &QueryColumns<'a>) -> Result<Self> {
        let find = |name: &'a str, role: &'static str| -> Result<(usize, &'a str)> {
            let at = found.iter().position(|(n, _)| n == name).ok_or_else(|| {
                let names: Vec<String> = found.iter().map(|(n, _)| n.clone()).collect();
                PostgresError::MissingColumn {
                    column: shown(name),
                    available: super::listed(&names),
                }
            })?;
            check_type(name, role, &found[at].1)?;
            Ok((at, name))
        };
        let user = find(wanted.user, "user")?;
        let item = find(wanted.item, "item")?;
        let key_type = |at: usize| match (INTEGERS.contains(&found[at].1), wanted.key_type) {
            (true, KeyType::String) => KeyType::String,
            (true, _) | (false, KeyType::Integer) => KeyType::Integer,
            (false, _) => KeyType::String,
        };
        Ok(Positions {
            key_types: [key_type(user.0), key_type(item.0)],
            user,
            item,
            rating: wanted.rating.map(|c| find(c, "rating")).transpose()?,
            timestamp: wanted.timestamp.map(|c| find(c, "timestamp")).transpose()?,
            weight: wanted.weight.map(|c| find(c, "weight")).transpose()?,
        })
    }

    /// The fields of `line` (tab-separated) at the user, item, rating and timestamp
    /// positions, and how many fields it has.
    fn pick<'l>(&self, line: &'l [u8]) -> ([Option<&'l [u8]>; 5], usize) {
        let wanted = [
            Some(self.user.0),
            Some(self.item.0),
            self.rating.map(|(at, _)| at),
            self.timestamp.map(|(at, _)| at),
            self.weight.map(|(at, _)| at),
        ];
        let (mut found, mut count) = ([None; 5], 0);
        for (at, field) in line.split(|&b| b == b'\t').enumerate() {
            for (slot, want) in found.iter_mut().zip(wanted) {
                if want == Some(at) {
                    *slot = Some(field);
                }
            }
            count = at + 1;
        }
        (found, count)
    }

    /// The interactions of the rows `read` hands to the function it is given (each row's
    /// number and `COPY` text line), and what `read` says it read.
    pub(super) fn collect(
        &self,
        read: impl FnOnce(&mut dyn FnMut(usize, &[u8]) -> Result<()>) -> Result<RowsRead>,
    ) -> Result<(Interactions, RowsRead)> {
        let mut out = Interactions {
            ratings: self.rating.map(|_| Vec::new()),
            timestamps: self.timestamp.map(|_| Vec::new()),
            weights: self.weight.map(|_| Vec::new()),
            ..Default::default()
        };
        let mut keys = self.key_types.map(KeyColumn::new);
        let rows = read(&mut |row, line| self.push(row, line, &mut keys, &mut out))?;
        let [users, items] = keys;
        (out.users, out.user_keys) = users.finish();
        (out.items, out.item_keys) = items.finish();
        Ok((out, rows))
    }

    /// Parses one row's values onto `out` (its keys onto `keys`).
    fn push(
        &self,
        row: usize,
        line: &[u8],
        keys: &mut [KeyColumn; 2],
        out: &mut Interactions,
    ) -> Result<()> {
        let (fields, count) = self.pick(line);
        let value = |slot: usize, column: &str| value_at(fields[slot], count, row, column);
        let rating = |slot: usize, column: &str| -> Result<f32> {
            let field = value(slot, column)?;
            parse_rating(field).map_err(|why| PostgresError::Value {
                row,
                column: shown(column),
                message: bad_value("rating", Expect::Rating, field, why),
            })
        };
        let integer = |slot: usize, column: &str, role: &str, expect: Expect| -> Result<i64> {
            let field = value(slot, column)?;
            parse_integer(field).map_err(|why| PostgresError::Value {
                row,
                column: shown(column),
                message: bad_value(role, expect, field, why),
            })
        };
        for (slot, (column, role)) in [(self.user.1, "user"), (self.item.1, "item")]
            .into_iter()
            .enumerate()
        {
            let field = unescaped(value(slot, column)?);
            keys[slot]
                .push(&field)
                .map_err(|why| PostgresError::Value {
                    row,
                    column: shown(column),
                    message: bad_key(role, &field, why),
                })?;
        }
        if let (Some((_, column)), Some(ratings)) = (self.rating, out.ratings.as_mut()) {
            ratings.push(rating(2, column)?);
        }
        if let (Some((_, column)), Some(timestamps)) = (self.timestamp, out.timestamps.as_mut()) {
            timestamps.push(integer(3, column, "timestamp", Expect::Timestamp)?);
        }
        if let (Some((_, column)), Some(weights)) = (self.weight, out.weights.as_mut()) {
            let field = value(4, column)?;
            weights.push(parse_weight(field).map_err(|why| PostgresError::Value {
                row,
                column: shown(column),
                message: bad_value("weight", Expect::Weight, field, why),
            })?);
        }
        Ok(())
    }
}

/// The text of a picked field, or why it has none: COPY's text format writes NULL as `\N`;
/// other values of the types read need no unescaping (numbers hold no tab, line break or
/// backslash).
fn value_at<'l>(
    field: Option<&'l [u8]>,
    count: usize,
    row: usize,
    column: &str,
) -> Result<&'l str> {
    match field {
        Some(b"\\N") => Err(PostgresError::Value {
            row,
            column: shown(column),
            message: "NULL: every row needs a value here".into(),
        }),
        // Numbers are ASCII; anything else is refused as an empty value would be.
        Some(field) => Ok(std::str::from_utf8(field).unwrap_or_default()),
        None => Err(PostgresError::Value {
            row,
            column: shown(column),
            message: format!("the row has only {count} fields"),
        }),
    }
}

/// A text field of `COPY`'s text format with its backslash escapes undone (`\\t`, `\\n`,
/// `\\\\`, …): string keys may hold any character.
fn unescaped(field: &str) -> Cow<'_, str> {
    if !field.contains('\\') {
        return Cow::Borrowed(field);
    }
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Checks that a column's SQL type holds what it is read as.
fn check_type(column: &str, role: &'static str, found: &Type) -> Result<()> {
    let numbers = [Type::FLOAT4, Type::FLOAT8, Type::NUMERIC];
    let expected = match role {
        "rating" | "weight" if INTEGERS.contains(found) || numbers.contains(found) => {
            return Ok(());
        }
        "rating" | "weight" => {
            "expected a number (smallint, integer, bigint, real, double precision or numeric)"
        }
        _ if INTEGERS.contains(found) => return Ok(()),
        "timestamp" if [Type::TIMESTAMP, Type::TIMESTAMPTZ, Type::DATE].contains(found) => {
            "expected an integer count since 1970-01-01 UTC (select e.g. `extract(epoch from <column>)::bigint`, and set data.time_unit when it does not count seconds)"
        }
        "timestamp" => "expected an integer (smallint, integer or bigint)",
        _ if [
            Type::TEXT,
            Type::VARCHAR,
            Type::BPCHAR,
            Type::NAME,
            Type::UUID,
        ]
        .contains(found) =>
        {
            return Ok(());
        }
        _ => {
            "expected an integer or text key (smallint, integer, bigint, text, varchar, char or uuid)"
        }
    };
    Err(PostgresError::ColumnType {
        column: shown(column),
        role,
        found: found.name().into(),
        expected: expected.into(),
    })
}

/// Refuses a query without `ORDER BY` outside string literals, quoted names and comments.
pub(crate) fn check_order_by(query: &str) -> Result<()> {
    let words = unquoted(query).to_ascii_lowercase();
    let mut words = words
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .peekable();
    while let Some(word) = words.next() {
        if word == "order" && words.peek() == Some(&"by") {
            return Ok(());
        }
    }
    Err(PostgresError::NoOrderBy)
}

/// The query with string literals (`'…'`, `E'…'`, `$tag$…$tag$`), quoted names (`"…"`) and
/// comments (`--`, `/* */`) replaced by spaces.
fn unquoted(query: &str) -> String {
    let bytes = query.as_bytes();
    let mut out = String::with_capacity(query.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &query[i..];
        let skip_to = |end: &str, from: usize| {
            rest[from..]
                .find(end)
                .map_or(rest.len(), |at| from + at + end.len())
        };
        let skipped = match bytes[i] {
            b'\'' => skip_quoted(rest, b'\''),
            b'"' => skip_quoted(rest, b'"'),
            b'-' if rest.starts_with("--") => skip_to("\n", 2),
            b'/' if rest.starts_with("/*") => skip_to("*/", 2),
            b'$' => dollar_tag(rest).map_or(0, |tag| skip_to(tag, tag.len())),
            _ => 0,
        };
        if skipped == 0 {
            let c = rest.chars().next().expect("not at the end");
            out.push(c);
            i += c.len_utf8();
        } else {
            out.push(' ');
            i += skipped;
        }
    }
    out
}

/// The length of a quoted literal at the start of `rest` (a doubled quote and, for `E'…'`
/// style text, a backslash escape the next byte), to the end when it is not closed.
fn skip_quoted(rest: &str, quote: u8) -> usize {
    let bytes = rest.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        if bytes[i] == b'\\' && quote == b'\'' {
            i += 2;
        } else if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// The tag (`$$` or `$name$`) of a dollar-quoted string at the start of `rest`.
fn dollar_tag(rest: &str) -> Option<&str> {
    let end = rest[1..].find('$')? + 2;
    let name = &rest[1..end - 1];
    let valid = name.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    valid.then(|| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_by_is_found_only_outside_literals_and_comments() {
        for query in [
            "select * from t order by u, ts",
            "SELECT * FROM t\nORDER\n  BY u",
            "select 'x' as a from t order by 1",
            "select * from t /* order by u */ order by 1",
        ] {
            assert!(check_order_by(query).is_ok(), "{query}");
        }
        for query in [
            "select * from t",
            "select 'order by' from t",
            "select * from t -- order by u",
            "select * from t /* order by u */",
            "select $$ order by $$ from t",
            "select $q$ order by $q$ from t",
            "select \"order by\" from t",
            "select * from t where note = 'it''s order by x'",
            "select * from border by_x",
        ] {
            assert!(
                matches!(check_order_by(query), Err(PostgresError::NoOrderBy)),
                "{query}"
            );
        }
    }

    #[test]
    fn pgpass_lines_split_on_unescaped_colons() {
        assert_eq!(
            pgpass_fields("localhost:5433:db:ember:s3cr\\:et:x"),
            Some([
                "localhost".into(),
                "5433".into(),
                "db".into(),
                "ember".into(),
                "s3cr:et:x".into()
            ])
        );
        assert_eq!(
            pgpass_fields("*:*:*:u:back\\\\slash"),
            Some(["*", "*", "*", "u", "back\\slash"].map(String::from))
        );
        assert_eq!(pgpass_fields("# host:port:db:user:pw"), None);
        assert_eq!(pgpass_fields("host:port:db:user"), None);
    }

    fn config(url: &str) -> Config {
        Config::from_str(url).unwrap()
    }

    #[test]
    fn pgpass_lookup_matches_host_port_db_user_with_wildcards_and_a_private_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\n\
             db.example:5432:sales:ana:first\n\
             127.0.0.1:5433:*:ember:second\n\
             localhost:5433:*:*:third\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let found = |url: &str| pgpass_lookup(&file, &config(url));
        assert_eq!(
            found("postgresql://ana@db.example/sales").as_deref(),
            Some("first")
        );
        assert_eq!(found("postgresql://ana@db.example/other"), None);
        assert_eq!(
            found("host=127.0.0.1 port=5433 user=ember dbname=x").as_deref(),
            Some("second")
        );
        assert_eq!(found("host=127.0.0.1 port=5433 user=other dbname=x"), None);
        assert_eq!(
            found("host=/tmp/pg port=5433 user=other dbname=x").as_deref(),
            Some("third")
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(found("postgresql://ana@db.example/sales"), None);
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_echoing_it() {
        for url in [
            "postgresql://ana:hunter2@db.example/sales",
            "host=db.example user=ana password=hunter2",
        ] {
            let spec = PostgresSpec {
                url,
                query: "select 1 order by 1",
                password_env: None,
            };
            let err = connection_config(spec).unwrap_err().to_string();
            assert_eq!(
                err,
                "data.url holds a password: ember never takes one from the config (the config \
                 is copied into the run directory); set PGPASSWORD, add a line to ~/.pgpass, or \
                 name an environment variable in data.password_env"
            );
        }
        let err = connection_config(PostgresSpec {
            url: "host=db.example sslmode=sometimes",
            query: "",
            password_env: None,
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("data.url is not a PostgreSQL connection string: "),
            "{err}"
        );
    }

    #[test]
    fn the_copy_statement_drops_a_trailing_semicolon() {
        assert_eq!(
            copy_statement("select 1 order by 1 ;\n"),
            "COPY (select 1 order by 1\n) TO STDOUT"
        );
    }
}
