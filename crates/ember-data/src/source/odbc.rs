//! `format = "odbc"`: the rows of a query through any ODBC driver (SAP HANA, SQL Server,
//! Snowflake, each with its vendor's driver; the tests use Debian's PostgreSQL driver). Behind
//! the `odbc` cargo feature, with unixODBC; without it the format is still read from configs
//! and refused when used, so that one config serves every build.
//!
//! The rows are read as text and become the lines `COPY … TO STDOUT` writes (tab-separated,
//! `\N` for NULL, backslash escapes), so that the PostgreSQL reader's column checks, parsing
//! and messages apply as they are, and the rows are fingerprinted the same way: ML-100K read
//! through the PostgreSQL ODBC driver has the hash the `postgres` source gives it.

use ember_spec::lines::LineLimit;

use super::postgres::{EpochUnit, QueryColumns, RowsRead};
use crate::{DataError, Interactions, Result, TimeUnit};

/// The connection and query of an ODBC source.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OdbcSpec<'a> {
    /// The connection string, without a password.
    pub(crate) connection: &'a str,
    pub(crate) query: &'a str,
    /// The environment variable holding the password, if the driver needs one.
    pub(crate) password_env: Option<&'a str>,
}

/// The refusal of a build without ODBC.
#[cfg(not(feature = "odbc"))]
fn not_built() -> DataError {
    DataError::Invalid(
        "format = \"odbc\": this ember was built without ODBC; build it with `--features odbc` \
         (unixODBC and the database's ODBC driver installed)"
            .into(),
    )
}

/// Reads the query's rows into interactions, and what they were.
#[cfg(not(feature = "odbc"))]
pub(crate) fn read_odbc(
    _: OdbcSpec,
    _: &QueryColumns,
    _: EpochUnit,
    _: LineLimit,
) -> Result<(Interactions, Option<TimeUnit>, RowsRead)> {
    Err(not_built())
}

/// Runs the query and returns how many rows it gives and their hash.
#[cfg(not(feature = "odbc"))]
pub(crate) fn fingerprint_odbc(_: OdbcSpec, _: LineLimit) -> Result<RowsRead> {
    Err(not_built())
}

#[cfg(feature = "odbc")]
pub(crate) use with_odbc::{fingerprint_odbc, read_odbc};

#[cfg(feature = "odbc")]
mod with_odbc {
    use odbc_api::buffers::TextRowSet;
    use odbc_api::{ConnectionOptions, Cursor, DataType, Environment, ResultSetMetadata};
    use postgres::types::Type;

    use super::*;
    use crate::source::postgres::{Positions, PostgresError, check_order_by};

    /// Rows fetched at a time.
    const BATCH: usize = 1024;

    /// What the driver said, with any password the message might repeat left out.
    fn said(error: odbc_api::Error, password: Option<&str>) -> PostgresError {
        let mut message = error.to_string();
        if let Some(password) = password.filter(|p| !p.is_empty()) {
            message = message.replace(password, "…");
        }
        PostgresError::Odbc(message)
    }

    /// The connection string with the password from `password_env`; a string that holds a
    /// password itself is refused.
    fn connection_string(spec: OdbcSpec) -> Result<(String, Option<String>)> {
        let lower = spec.connection.to_ascii_lowercase();
        if lower.contains("pwd=") || lower.contains("password=") {
            return Err(DataError::Invalid(
                "data.connection holds a password: leave it out and name the variable that \
                 holds it with data.password_env"
                    .into(),
            ));
        }
        let Some(name) = spec.password_env else {
            return Ok((spec.connection.to_string(), None));
        };
        let password =
            std::env::var(name).map_err(|_| PostgresError::PasswordEnvUnset(name.into()))?;
        let mut connection = spec.connection.trim_end().to_string();
        if !connection.is_empty() && !connection.ends_with(';') {
            connection.push(';');
        }
        // Braces quote the value; a `}` inside is doubled.
        connection.push_str(&format!("PWD={{{}}};", password.replace('}', "}}")));
        Ok((connection, Some(password)))
    }

    /// The PostgreSQL type that holds what an ODBC column holds, for the shared checks.
    fn as_postgres(data: DataType) -> Type {
        match data {
            DataType::TinyInt | DataType::SmallInt => Type::INT2,
            DataType::Integer => Type::INT4,
            DataType::BigInt => Type::INT8,
            DataType::Real => Type::FLOAT4,
            DataType::Float { .. } | DataType::Double => Type::FLOAT8,
            DataType::Numeric { .. } | DataType::Decimal { .. } => Type::NUMERIC,
            DataType::Char { .. } | DataType::WChar { .. } => Type::BPCHAR,
            DataType::Varchar { .. }
            | DataType::WVarchar { .. }
            | DataType::LongVarchar { .. }
            | DataType::WLongVarchar { .. } => Type::TEXT,
            DataType::Date => Type::DATE,
            DataType::Timestamp { .. } => Type::TIMESTAMP,
            _ => Type::UNKNOWN,
        }
    }

    /// A field as `COPY`'s text format writes it: backslash, tab and line breaks escaped.
    fn escaped_into(field: &[u8], line: &mut Vec<u8>) {
        for &b in field {
            match b {
                b'\\' => line.extend_from_slice(b"\\\\"),
                b'\t' => line.extend_from_slice(b"\\t"),
                b'\n' => line.extend_from_slice(b"\\n"),
                b'\r' => line.extend_from_slice(b"\\r"),
                _ => line.push(b),
            }
        }
    }

    /// Connects, prepares the query and hands `work` the prepared statement, the result's
    /// column names and types, and the password (for scrubbing messages).
    fn with_prepared<T>(
        spec: OdbcSpec,
        work: impl FnOnce(
            &mut odbc_api::Prepared<odbc_api::handles::StatementImpl<'_>>,
            Vec<(String, Type)>,
            Option<&str>,
        ) -> Result<T>,
    ) -> Result<T> {
        check_order_by(spec.query)?;
        let (connection, password) = connection_string(spec)?;
        let password = password.as_deref();
        let env = Environment::new().map_err(|e| said(e, password))?;
        let conn = env
            .connect_with_connection_string(&connection, ConnectionOptions::default())
            .map_err(|e| said(e, password))?;
        let mut prepared = conn
            .prepare(spec.query.trim_end().trim_end_matches(';'))
            .map_err(|e| said(e, password))?;
        let names: Vec<String> = prepared
            .column_names()
            .and_then(|names| names.collect())
            .map_err(|e| said(e, password))?;
        let mut found = Vec::with_capacity(names.len());
        for (c, name) in names.into_iter().enumerate() {
            let data = prepared
                .col_data_type(c as u16 + 1)
                .map_err(|e| said(e, password))?;
            found.push((name, as_postgres(data)));
        }
        work(&mut prepared, found, password)
    }

    /// Runs the prepared query and hands each row, as a `COPY` text line, to `row`; returns
    /// what was read, hashed as the PostgreSQL reader hashes `COPY`'s output.
    fn fetch_lines(
        prepared: &mut odbc_api::Prepared<odbc_api::handles::StatementImpl<'_>>,
        limit: LineLimit,
        password: Option<&str>,
        row: &mut dyn FnMut(usize, &[u8]) -> std::result::Result<(), PostgresError>,
    ) -> std::result::Result<RowsRead, PostgresError> {
        let mut cursor = prepared
            .execute(())
            .map_err(|e| said(e, password))?
            .ok_or_else(|| PostgresError::Odbc("data.query returned no result set".into()))?;
        let buffer = TextRowSet::for_cursor(BATCH, &mut cursor, Some(limit.bytes))
            .map_err(|e| said(e, password))?;
        let mut block = cursor.bind_buffer(buffer).map_err(|e| said(e, password))?;
        let mut read = RowsRead {
            rows: 0,
            bytes: 0,
            hash: 0xcbf2_9ce4_8422_2325,
        };
        let mut line = Vec::new();
        while let Some(batch) = block.fetch().map_err(|e| said(e, password))? {
            for r in 0..batch.num_rows() {
                line.clear();
                for c in 0..batch.num_cols() {
                    if c > 0 {
                        line.push(b'\t');
                    }
                    match batch.at(c, r) {
                        None => line.extend_from_slice(b"\\N"),
                        Some(field) => escaped_into(field, &mut line),
                    }
                }
                for &byte in line.iter().chain(b"\n") {
                    read.hash ^= byte as u64;
                    read.hash = read.hash.wrapping_mul(0x0000_0100_0000_01b3);
                }
                read.bytes += line.len() as u64 + 1;
                read.rows += 1;
                row(read.rows as usize, &line)?;
            }
        }
        Ok(read)
    }

    /// Reads the query's rows into interactions (streamed through the PostgreSQL reader's
    /// parser), and what they were.
    pub(crate) fn read_odbc(
        spec: OdbcSpec,
        wanted: &QueryColumns,
        unit: EpochUnit,
        limit: LineLimit,
    ) -> Result<(Interactions, Option<TimeUnit>, RowsRead)> {
        with_prepared(spec, |prepared, found, password| {
            let positions = Positions::resolve(&found, wanted)?;
            let (out, read) =
                positions.collect(|push| fetch_lines(prepared, limit, password, push))?;
            if out.is_empty() {
                let empty = "data.query returned no rows: no interactions";
                return Err(PostgresError::Odbc(empty.into()).into());
            }
            let unit = out.timestamps.is_some().then_some(unit.into());
            Ok((out, unit, read))
        })
    }

    /// Runs the query and returns how many rows it gives and their hash.
    pub(crate) fn fingerprint_odbc(spec: OdbcSpec, limit: LineLimit) -> Result<RowsRead> {
        with_prepared(spec, |prepared, _, password| {
            Ok(fetch_lines(prepared, limit, password, &mut |_, _| Ok(()))?)
        })
    }
}
