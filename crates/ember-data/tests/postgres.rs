//! The PostgreSQL source against a real server: `EMBER_TEST_POSTGRES_URL` names it
//! (`scripts/test_postgres.sh start` runs one and prints the variable). Without it the tests say
//! why and pass, and fail where `EMBER_REQUIRE_TEST_INPUTS` is set. Each test makes its own
//! tables, named after the test and the process.

#[path = "support/postgres.rs"]
mod support;

use ember_data::{
    DataError, DataSource, InputFile, PostgresError, Preprocess, Split, prepare_fingerprinted,
    verify,
};
use ember_spec::KeyType;
use postgres::{Client, NoTls};
use std::time::{Duration, Instant};
use support::{load_ml100k, ml100k, server};

/// A table name unique to this test and process.
fn table(test: &str) -> String {
    format!("ember_{test}_{}", std::process::id())
}

fn source(url: &str, query: &str, rating: Option<&str>, timestamp: Option<&str>) -> DataSource {
    DataSource::Postgres {
        url: url.into(),
        query: query.into(),
        user: "u".into(),
        item: "i".into(),
        rating: rating.map(Into::into),
        timestamp: timestamp.map(Into::into),
        time_unit: None,
        password_env: None,
        key_type: KeyType::Auto,
        weight: None,
    }
}

/// FNV-1a (64-bit) of `bytes`, as `inputs.json` writes it.
fn fnv1a64(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash = (hash ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fnv1a64:{hash:016x}")
}

#[test]
fn ml100k_from_postgres_is_the_file_bit_for_bit() {
    let (Some((url, mut client)), Some(path)) = (server(), ml100k()) else {
        return;
    };
    let name = table("ml100k");
    load_ml100k(&mut client, &name, &path);
    let query = format!("SELECT u, i, r, ts FROM {name} ORDER BY line");
    let from_db = source(&url, &query, Some("r"), Some("ts")).load().unwrap();
    let from_file = DataSource::Movielens100k { path: path.clone() }
        .load()
        .unwrap();
    assert_eq!(from_db.interactions.len(), 100_000);
    assert_eq!(from_db.interactions, from_file.interactions);
    assert_eq!(from_db.time_unit, from_file.time_unit);
    // COPY writes each row as the file holds it (tab-separated, `\n`), so the hash of the rows
    // is the hash of the file.
    let printed = source(&url, &query, None, None).fingerprint().unwrap();
    assert_eq!(
        printed,
        vec![InputFile::Postgres {
            url: url.clone(),
            query: query.clone(),
            password_env: None,
            rows: 100_000,
            bytes: std::fs::metadata(&path).unwrap().len(),
            hash: fnv1a64(&std::fs::read(&path).unwrap()),
        }]
    );
    client.batch_execute(&format!("DROP TABLE {name}")).unwrap();
}

#[test]
fn a_weight_column_is_read_and_a_negative_weight_named_with_its_row() {
    let Some((url, mut client)) = server() else {
        return;
    };
    let name = table("weights");
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {name}; CREATE TABLE {name} (line int, u int, i int, \
             plays numeric); INSERT INTO {name} VALUES (1, 1, 10, 2.5), (2, 1, 11, 0), \
             (3, 2, 10, 7), (4, 2, 12, -1)"
        ))
        .unwrap();
    let weighted = |query: String| {
        let mut source = source(&url, &query, None, None);
        if let DataSource::Postgres { weight, .. } = &mut source {
            *weight = Some("plays".into());
        }
        source.load()
    };
    let ordered = format!("SELECT u, i, plays FROM {name} WHERE line < 4 ORDER BY line");
    let loaded = weighted(ordered).unwrap().interactions;
    assert_eq!(loaded.weights, Some(vec![2.5, 0.0, 7.0]));
    let err = weighted(format!("SELECT u, i, plays FROM {name} ORDER BY line"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "data.query, row 4, column `plays`: weight `-1` is negative: weights (counts, \
         quantities, spend) must be 0 or more"
    );
    client.batch_execute(&format!("DROP TABLE {name}")).unwrap();
}

#[test]
fn text_columns_are_string_keys_as_written() {
    let Some((url, mut client)) = server() else {
        return;
    };
    let name = table("text_keys");
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {name}; CREATE TABLE {name} (line int, u text, i varchar(20), \
             n int); INSERT INTO {name} VALUES (1, 'C-000123', 'SKU-00042', 7), \
             (2, 'C-9', '000123', 8), (3, E'tab\\there', 'SKU-00042', 9), \
             (4, 'C-000123', '000123', 10)"
        ))
        .unwrap();
    let query = format!("SELECT u, i FROM {name} ORDER BY line");
    let loaded = source(&url, &query, None, None)
        .load()
        .unwrap()
        .interactions;
    let keys = |codes: &[i64], dictionary: &ember_data::KeyDictionary| -> Vec<String> {
        codes
            .iter()
            .map(|&c| dictionary.key(c).to_string())
            .collect()
    };
    assert_eq!(
        keys(&loaded.users, &loaded.user_keys),
        ["C-000123", "C-9", "tab\there", "C-000123"]
    );
    assert_eq!(
        keys(&loaded.items, &loaded.item_keys),
        ["SKU-00042", "000123", "SKU-00042", "000123"]
    );
    // An integer column declared string is read in decimal; a text column declared integer is
    // parsed, and a key that is not an integer is named with its row.
    let declared = |query: String, key_type| {
        let mut source = source(&url, &query, None, None);
        if let DataSource::Postgres { key_type: k, .. } = &mut source {
            *k = key_type;
        }
        source.load()
    };
    let numbers = format!("SELECT n AS u, n + 10 AS i FROM {name} ORDER BY line");
    let as_strings = declared(numbers, KeyType::String).unwrap().interactions;
    assert_eq!(
        keys(&as_strings.items, &as_strings.item_keys),
        ["17", "18", "19", "20"]
    );
    let err = declared(query.clone(), KeyType::Integer)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "data.query, row 1, column `u`: user `C-000123` is not an integer id; the keys are \
         declared integers (key_type = \"integer\"): set key_type = \"string\" for keys such \
         as `C-000123`"
    );
    client.batch_execute(&format!("DROP TABLE {name}")).unwrap();
}

#[test]
fn a_changed_table_is_refused_with_its_rows_and_hashes() {
    let Some((url, mut client)) = server() else {
        return;
    };
    let name = table("changed");
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {name}; CREATE TABLE {name} (u int, i int, r real);
             INSERT INTO {name} VALUES (1, 10, 5), (2, 10, 3.5), (1, 11, 4)"
        ))
        .unwrap();
    let query = format!("select u, i, r from {name} order by u, i");
    let recorded = source(&url, &query, Some("r"), None).fingerprint().unwrap();
    let then = fnv1a64(b"1\t10\t5\n1\t11\t4\n2\t10\t3.5\n");
    match &recorded[..] {
        [InputFile::Postgres { rows, hash, .. }] => assert_eq!((*rows, hash), (3, &then)),
        other => panic!("{other:?}"),
    }
    verify(&recorded).unwrap();
    client
        .batch_execute(&format!("UPDATE {name} SET r = 2 WHERE u = 2"))
        .unwrap();
    let now = fnv1a64(b"1\t10\t5\n1\t11\t4\n2\t10\t2\n");
    let err = verify(&recorded).unwrap_err().to_string();
    let server = server_label(&url);
    assert_eq!(
        err,
        format!(
            "the table changed since the run was trained (then 3 rows, {then}; now 3 rows, \
             {now}): data.query `{query}` on the PostgreSQL server at {server} no longer \
             returns the same rows; restore them, or train a new run on the new data"
        )
    );
    client.batch_execute(&format!("DROP TABLE {name}")).unwrap();
}

/// Training reads a query once (it once ran it a second time to fingerprint the rows): the rows
/// are hashed as they are read, to the fingerprint `fingerprint()` gives. Each row the server
/// produces takes a number from a sequence, which counts the passes.
#[test]
fn prepare_fingerprinted_reads_the_query_once() {
    let Some((url, mut client)) = server() else {
        return;
    };
    let name = table("once");
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {name}; DROP SEQUENCE IF EXISTS {name}_rows;
             CREATE SEQUENCE {name}_rows; CREATE TABLE {name} (u int, i int, r real);
             INSERT INTO {name} VALUES (1, 10, 5), (1, 11, 4), (1, 12, 3), (2, 10, 2),
             (2, 12, 1), (2, 13, 4.5)"
        ))
        .unwrap();
    let query =
        format!("select u, i, r, nextval('{name}_rows') > 0 as counted from {name} order by u, i");
    let src = source(&url, &query, Some("r"), None);
    let (data, _, inputs) =
        prepare_fingerprinted(&src, &Preprocess::default(), &Split::LeaveOneOut, None).unwrap();
    let passes = |client: &mut Client| -> i64 {
        let row = client
            .query_one(&format!("select last_value from {name}_rows"), &[])
            .unwrap();
        row.get::<_, i64>(0) / 6
    };
    assert_eq!(passes(&mut client), 1);
    assert_eq!(
        data.stats().train + data.stats().valid + data.stats().test,
        6
    );
    let text = b"1\t10\t5\tt\n1\t11\t4\tt\n1\t12\t3\tt\n2\t10\t2\tt\n2\t12\t1\tt\n2\t13\t4.5\tt\n";
    let expected = InputFile::Postgres {
        url: url.clone(),
        query: query.clone(),
        password_env: None,
        rows: 6,
        bytes: text.len() as u64,
        hash: fnv1a64(text),
    };
    assert_eq!(inputs, vec![expected]);
    assert_eq!(src.fingerprint().unwrap(), inputs);
    assert_eq!(passes(&mut client), 2);
    client
        .batch_execute(&format!("DROP TABLE {name}; DROP SEQUENCE {name}_rows"))
        .unwrap();
}

/// `host H, port P` as messages name the test server.
fn server_label(url: &str) -> String {
    let field = |key: &str| {
        url.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .expect("the test url is in key=value form with host and port")
            .to_string()
    };
    format!("host {}, port {}", field("host"), field("port"))
}

/// The message `query` gets, the table `name` holding `rows` first.
fn refused(url: &str, client: &mut Client, setup: &str, query: &str) -> String {
    client.batch_execute(setup).unwrap();
    let err = source(url, query, Some("r"), None).load().unwrap_err();
    assert!(matches!(err, DataError::Postgres(_)), "{err:?}");
    err.to_string()
}

#[test]
fn bad_queries_and_rows_are_refused_with_what_and_where() {
    let Some((url, mut client)) = server() else {
        return;
    };
    let name = table("bad");
    let server = server_label(&url);
    let create = |columns: &str, rows: &str| {
        format!(
            "DROP TABLE IF EXISTS {name}; CREATE TABLE {name} ({columns}); \
             INSERT INTO {name} VALUES {rows}"
        )
    };
    let ordered = format!("select * from {name} order by 1");
    let cases = [
        (
            create("u int, i int, r real", "(1, 2, 3)"),
            format!("select * from {name}"),
            "data.query has no ORDER BY: a query's rows come in no set order unless it gives one, \
             and ember keeps the order of rows with equal timestamps, so the same table could \
             train differently; add e.g. `ORDER BY <user>, <timestamp>, <item>`"
                .to_string(),
        ),
        (
            "select 1".into(),
            format!("select u, i, r from {name}_missing order by 1"),
            format!(
                "the PostgreSQL server at {server} refused data.query: ERROR: relation \
                 \"{name}_missing\" does not exist"
            ),
        ),
        (
            create("u boolean, i int, r real", "(true, 2, 3)"),
            ordered.clone(),
            "data.query's column `u` (user) is of type bool: expected an integer or text key \
             (smallint, integer, bigint, text, varchar, char or uuid)"
                .into(),
        ),
        (
            create("u int, i double precision, r real", "(1, 2, 3)"),
            ordered.clone(),
            "data.query's column `i` (item) is of type float8: expected an integer or text key \
             (smallint, integer, bigint, text, varchar, char or uuid)"
                .into(),
        ),
        (
            create("u int, i int, r text", "(1, 2, 'good')"),
            ordered.clone(),
            "data.query's column `r` (rating) is of type text: expected a number (smallint, \
             integer, bigint, real, double precision or numeric)"
                .into(),
        ),
        (
            create("u int, item int, r real", "(1, 2, 3)"),
            ordered.clone(),
            "data.query returns no column `i` (it returns: u, item, r)".into(),
        ),
        (
            create("u int, i int, r real", "(1, 2, 3), (2, NULL, 4), (3, 3, 1)"),
            ordered.clone(),
            "data.query, row 2, column `i`: NULL: every row needs a value here".into(),
        ),
        (
            create("u int, i int, r real", "(1, 2, 3), (2, 3, 4), (3, 3, NULL)"),
            ordered.clone(),
            "data.query, row 3, column `r`: NULL: every row needs a value here".into(),
        ),
        (
            create("u int, i int, r real", "(1, 2, 3), (2, 3, 'NaN')"),
            ordered.clone(),
            "data.query, row 2, column `r`: rating `NaN` is not a finite number: NaN, \
             infinities and values beyond ±3.4e38 (ratings are 32-bit floats) are refused"
                .into(),
        ),
        (
            create("u int, i int, r real", "(1, 2, 3)"),
            format!("select * from {name} where u > 1 order by 1"),
            format!(
                "data.query returned no rows from the PostgreSQL server at {server}: no interactions"
            ),
        ),
    ];
    for (setup, query, expected) in cases {
        assert_eq!(
            refused(&url, &mut client, &setup, &query),
            expected,
            "{query}"
        );
    }
    client.batch_execute(&format!("DROP TABLE {name}")).unwrap();
}

#[test]
fn a_server_that_is_down_is_named_by_host_and_port() {
    // Port 1 on the loopback: nothing listens there, and the refusal is immediate.
    let url = "host=127.0.0.1 port=1 user=ember dbname=ember";
    let err = source(url, "select 1 as u, 2 as i order by 1", None, None)
        .load()
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot reach the PostgreSQL server at host 127.0.0.1, port 1: ")
            && err.contains("Connection refused"),
        "{err}"
    );
    let printed = source(url, "select 1 as u, 2 as i order by 1", None, None)
        .fingerprint()
        .unwrap_err()
        .to_string();
    assert_eq!(printed, err);
}

/// Terminates the first backend running a `COPY` for `application` once one shows up.
fn terminate_when_copying(url: &str, application: &str) -> std::thread::JoinHandle<bool> {
    let (url, application) = (url.to_string(), application.to_string());
    std::thread::spawn(move || {
        let mut admin = Client::connect(&url, NoTls).unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            let rows = admin
                .query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = $1 AND query LIKE 'COPY%'",
                    &[&application],
                )
                .unwrap();
            if !rows.is_empty() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    })
}

#[test]
fn a_connection_cut_mid_read_is_an_error_not_a_short_table() {
    let Some((url, mut client)) = server() else {
        return;
    };
    let name = table("cut");
    // Enough rows (about 40 MB as text) that the read is still going when the backend is
    // terminated; the primary key lets the server stream them in order from the first row.
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {name}; CREATE TABLE {name} (id int PRIMARY KEY, u int, i int);
             INSERT INTO {name} SELECT g, g % 1000, g % 777 FROM generate_series(1, 3000000) g"
        ))
        .unwrap();
    let application = format!("ember_cut_{}", std::process::id());
    let terminator = terminate_when_copying(&url, &application);
    let reading = format!("{url} application_name={application}");
    let query = format!("select u, i from {name} order by id");
    let err = source(&reading, &query, None, None).load().unwrap_err();
    assert!(terminator.join().unwrap(), "the COPY was seen and ended");
    match &err {
        DataError::Postgres(PostgresError::Cut { message, .. }) => assert!(
            message.contains("terminating connection due to administrator command"),
            "{err}"
        ),
        other => panic!("{other}"),
    }
    assert!(
        err.to_string().starts_with(&format!(
            "the connection to the PostgreSQL server at {} was lost after ",
            server_label(&url)
        )),
        "{err}"
    );
    client.batch_execute(&format!("DROP TABLE {name}")).unwrap();
}

/// An ODBC source on `connection` reading `query`'s `u`, `i` (and `r`, `ts`).
fn odbc_source(connection: &str, query: &str, rated: bool) -> DataSource {
    DataSource::Odbc {
        connection: connection.into(),
        query: query.into(),
        user: "u".into(),
        item: "i".into(),
        rating: rated.then(|| "r".into()),
        timestamp: rated.then(|| "ts".into()),
        time_unit: None,
        weight: None,
        password_env: None,
        key_type: KeyType::Auto,
    }
}

/// Without the `odbc` feature an ODBC source parses, and is refused when read, saying how to
/// build one that reads it.
#[cfg(not(feature = "odbc"))]
#[test]
fn an_odbc_source_in_a_build_without_odbc_says_how_to_get_one() {
    let err = odbc_source("DSN=shop;", "SELECT u, i FROM t ORDER BY u", false)
        .load()
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "format = \"odbc\": this ember was built without ODBC; build it with `--features odbc` \
         (unixODBC and the database's ODBC driver installed)"
    );
}

/// The ODBC source through Debian's PostgreSQL driver (psqlODBC) against the test server.
#[cfg(feature = "odbc")]
mod odbc {
    use super::*;

    /// ML-100K read through ODBC is what the `postgres` source reads, row for row, with the same
    /// fingerprint of its rows (the hash of the file); bad queries and rows are refused with
    /// the driver's message or the row.
    #[test]
    fn odbc_reads_what_postgres_reads_and_refuses_what_it_refuses() {
        let (Some((url, mut client)), Some(path)) = (server(), ml100k()) else {
            return;
        };
        let Some(connection) = support::odbc_connection(&url, None, None) else {
            return;
        };
        let name = table("odbc");
        load_ml100k(&mut client, &name, &path);
        let query = format!("SELECT u, i, r, ts FROM {name} ORDER BY line");
        let through_odbc = odbc_source(&connection, &query, true).load().unwrap();
        let direct = source(&url, &query, Some("r"), Some("ts")).load().unwrap();
        assert_eq!(through_odbc.interactions, direct.interactions);
        assert_eq!(through_odbc.time_unit, direct.time_unit);
        let Some(InputFile::Odbc {
            rows, bytes, hash, ..
        }) = through_odbc.query_rows
        else {
            panic!("an ODBC fingerprint");
        };
        assert_eq!(
            (rows, bytes),
            (100_000, std::fs::metadata(&path).unwrap().len())
        );
        assert_eq!(hash, fnv1a64(&std::fs::read(&path).unwrap()));
        let odbc_err = |query: &str| {
            odbc_source(&connection, query, false)
                .load()
                .unwrap_err()
                .to_string()
        };
        let err = odbc_err("SELECT u, i FROM ember_no_such_table ORDER BY u");
        assert!(
            err.starts_with("the ODBC data source: ")
                && err.contains("relation \"ember_no_such_table\" does not exist"),
            "{err}"
        );
        client
            .batch_execute(&format!("UPDATE {name} SET u = NULL WHERE line = 2"))
            .unwrap();
        assert_eq!(
            odbc_err(&format!("SELECT u, i FROM {name} ORDER BY line")),
            "data.query, row 2, column `u`: NULL: every row needs a value here"
        );
        let with_password = odbc_source(&format!("{connection}PWD=secret;"), &query, false);
        assert_eq!(
            with_password.load().unwrap_err().to_string(),
            "data.connection holds a password: leave it out and name the variable that holds \
             it with data.password_env"
        );
        client.batch_execute(&format!("DROP TABLE {name}")).unwrap();
    }
}
