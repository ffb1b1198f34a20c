//! What the PostgreSQL tests of ember-data and ember-cli share: the test server
//! (`EMBER_TEST_POSTGRES_URL`, which `scripts/test_postgres.sh start` prints), ML-100K's
//! `u.data`, and a table loaded from it. ember-cli's tests include this file with `#[path]`
//! (a test file of one crate cannot use another crate's test modules).

// Each test file compiles this module on its own and uses a part of it.
#![allow(dead_code)]

use postgres::{Client, NoTls};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Skips (or, where inputs are required, fails) with `reason`.
pub fn skip(reason: &str) {
    assert!(
        std::env::var_os("EMBER_REQUIRE_TEST_INPUTS").is_none(),
        "{reason}; EMBER_REQUIRE_TEST_INPUTS is set"
    );
    eprintln!("skipped: {reason}");
}

/// The test server's connection string and a client on it.
pub fn server() -> Option<(String, Client)> {
    let Ok(url) = std::env::var("EMBER_TEST_POSTGRES_URL") else {
        skip("EMBER_TEST_POSTGRES_URL is not set (scripts/test_postgres.sh start runs a server)");
        return None;
    };
    let client = Client::connect(&url, NoTls).expect("the test server accepts connections");
    Some((url, client))
}

/// ML-100K's `u.data` (in the shared datasets beside the checkout), when it is there.
pub fn ml100k() -> Option<PathBuf> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/ml-100k/u.data");
    if path.is_file() {
        Some(path)
    } else {
        skip(&format!("{} not found", path.display()));
        None
    }
}

/// Loads `u.data` into the new table `name` (`line` numbers its rows in file order) with
/// COPY FROM STDIN.
pub fn load_ml100k(client: &mut Client, name: &str, path: &Path) {
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {name}; CREATE TABLE {name} (line bigserial PRIMARY KEY, \
             u integer, i integer, r smallint, ts bigint)"
        ))
        .unwrap();
    let mut writer = client
        .copy_in(&format!("COPY {name} (u, i, r, ts) FROM STDIN"))
        .unwrap();
    writer.write_all(&std::fs::read(path).unwrap()).unwrap();
    writer.finish().unwrap();
}
