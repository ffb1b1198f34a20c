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

/// Loads ML-100K's attribute files beside `u.data` into the new tables `customers` (`id` as
/// `C-000196`, `age`, `gender`, `occupation`) and `products` (`sku` as `SKU-00050`, `title`, and
/// `genres`, the names of its genre flags joined by `|`). `u.item` is Latin-1: its titles
/// arrive in UTF-8.
pub fn load_ml100k_attributes(client: &mut Client, customers: &str, products: &str, data: &Path) {
    let dir = data.parent().expect("u.data's directory");
    let latin1 = |name: &str| -> String {
        std::fs::read(dir.join(name))
            .unwrap()
            .into_iter()
            .map(char::from)
            .collect()
    };
    let genres: Vec<String> = latin1("u.genre")
        .lines()
        .filter_map(|l| Some(l.split_once('|')?.0.to_string()))
        .collect();
    let mut users = String::new();
    for line in latin1("u.user").lines() {
        let f: Vec<&str> = line.split('|').collect();
        let id: u32 = f[0].parse().unwrap();
        users.push_str(&format!("C-{id:06}\t{}\t{}\t{}\n", f[1], f[2], f[3]));
    }
    let mut items = String::new();
    for line in latin1("u.item").lines() {
        let f: Vec<&str> = line.split('|').collect();
        let id: u32 = f[0].parse().unwrap();
        let flags = &f[5..];
        let named: Vec<&str> = genres
            .iter()
            .zip(flags)
            .filter(|(_, flag)| **flag == "1")
            .map(|(g, _)| g.as_str())
            .collect();
        let title = f[1].replace('\\', "\\\\");
        items.push_str(&format!("SKU-{id:05}\t{title}\t{}\n", named.join("|")));
    }
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {customers}; DROP TABLE IF EXISTS {products}; \
             CREATE TABLE {customers} (id text, age integer, gender text, occupation text); \
             CREATE TABLE {products} (sku text, title text, genres text)"
        ))
        .unwrap();
    for (table, rows) in [(customers, users), (products, items)] {
        let mut writer = client.copy_in(&format!("COPY {table} FROM STDIN")).unwrap();
        writer.write_all(rows.as_bytes()).unwrap();
        writer.finish().unwrap();
    }
}

/// The test server as an ODBC connection string through Debian's PostgreSQL driver
/// (psqlODBC): over its socket directory by default, or `host` (e.g. `127.0.0.1`) with `user`;
/// `None` (skipped, saying why) when the driver is not installed.
pub fn odbc_connection(url: &str, host: Option<&str>, user: Option<&str>) -> Option<String> {
    let driver = "PostgreSQL Unicode";
    let installed = std::fs::read_to_string("/etc/odbcinst.ini").unwrap_or_default();
    if !installed.contains(&format!("[{driver}]")) {
        skip(&format!(
            "the ODBC driver `{driver}` is not installed (odbc-postgresql)"
        ));
        return None;
    }
    let field = |name: &str| {
        url.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_default()
            .to_string()
    };
    Some(format!(
        "Driver={{{driver}}};Servername={};Port={};Database={};Username={};",
        host.map_or_else(|| field("host"), String::from),
        field("port"),
        field("dbname"),
        user.map_or_else(|| field("user"), String::from)
    ))
}
