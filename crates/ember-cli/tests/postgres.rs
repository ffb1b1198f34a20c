//! `ember train` from PostgreSQL: the same metrics as from the file, a password that reaches no
//! file or log, a login over TLS, clear refusals that leave no run directory, and `eval` and
//! `export` refusing once the table changed. The server comes from `EMBER_TEST_POSTGRES_URL`
//! (`scripts/test_postgres.sh start`); without it (or ML-100K) the tests say why and pass, and
//! fail where `EMBER_REQUIRE_TEST_INPUTS` is set.

mod common;
#[path = "../../ember-data/tests/support/postgres.rs"]
mod support;

use common::{ember, stderr};
use postgres::Client;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::{load_ml100k, ml100k, server, skip};

/// The test server's connection string and a client on it, and ML-100K's `u.data`.
fn inputs() -> Option<(String, Client, PathBuf)> {
    let (url, client) = server()?;
    let path = ml100k()?;
    Some((url, client, path))
}

/// A short MF run on ML-100K with `data` as its `[data]` table.
fn config(name: &str, data: &str) -> String {
    format!(
        "name = \"{name}\"\nseed = 42\n[data]\n{data}\n[split]\nkind = \"ratio\"\ntrain = 0.8\n\
         valid = 0.1\ntest = 0.1\nseed = 42\n[model]\nkind = \"mf\"\nfactors = 16\n[train]\n\
         epochs = 2\nbatch_size = 2048\nnegatives = 1\nloss = \"bpr\"\n[eval]\n\
         protocol = {{ kind = \"full_ranking\" }}\nks = [10, 20]\nmonitor = \"NDCG@20\"\n"
    )
}

/// The `[data]` table reading `table` on `url`.
fn postgres_data(url: &str, table: &str, extra: &str) -> String {
    format!(
        "format = \"postgres\"\nurl = \"{url}\"\nquery = \"SELECT u, i, r, ts FROM {table} \
         ORDER BY line\"\nuser = \"u\"\nitem = \"i\"\nrating = \"r\"\ntimestamp = \"ts\"\n{extra}"
    )
}

/// Runs `ember train` on `config` in `dir` with `env` set.
fn train(dir: &Path, config: &str, env: &[(&str, &str)]) -> Output {
    fs::write(dir.join("c.toml"), config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(["train", "--config", "c.toml", "--no-progress"])
        // The password comes only from what a test gives.
        .env_remove("PGPASSWORD")
        .env_remove("PGPASSFILE")
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .unwrap()
}

/// The test metrics a run wrote.
fn test_metrics(run: &Path) -> serde_json::Value {
    let text = fs::read_to_string(run.join("metrics.json")).unwrap();
    let metrics: serde_json::Value = serde_json::from_str(&text).unwrap();
    metrics["test"].clone()
}

#[test]
fn training_from_postgres_matches_the_file_and_refuses_a_changed_table() {
    let Some((url, mut client, path)) = inputs() else {
        return;
    };
    let table = format!("ember_cli_ml100k_{}", std::process::id());
    load_ml100k(&mut client, &table, &path);
    let dir = tempfile::tempdir().unwrap();
    let from_file = config(
        "file",
        &format!("format = \"movielens100k\"\npath = \"{}\"", path.display()),
    );
    let out = train(dir.path(), &from_file, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = train(
        dir.path(),
        &config("db", &postgres_data(&url, &table, "")),
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (file_metrics, db_metrics) = (
        test_metrics(&dir.path().join("runs/file")),
        test_metrics(&dir.path().join("runs/db")),
    );
    assert!(
        file_metrics.to_string().contains("NDCG@20"),
        "{file_metrics}"
    );
    assert_eq!(db_metrics, file_metrics);
    eprintln!("test metrics (file and PostgreSQL): {db_metrics}");
    let inputs = fs::read_to_string(dir.path().join("runs/db/inputs.json")).unwrap();
    assert!(
        inputs.contains("\"rows\": 100000") && inputs.contains(&format!("FROM {table}")),
        "{inputs}"
    );
    // One rating changed: eval and export refuse, naming the table's change.
    client
        .batch_execute(&format!("UPDATE {table} SET r = r % 5 + 1 WHERE line = 1"))
        .unwrap();
    for args in [
        &["eval", "--run", "runs/db"][..],
        &["export", "--run", "runs/db", "--out", "exported"][..],
    ] {
        let out = ember(args, dir.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.starts_with("error: ")
                && err.contains(
                    "the table changed since the run was trained (then 100000 rows, fnv1a64:"
                )
                && err.contains("; now 100000 rows, fnv1a64:"),
            "{args:?}: {err}"
        );
    }
    assert!(!dir.path().join("exported").exists());
    client
        .batch_execute(&format!("DROP TABLE {table}"))
        .unwrap();
}

/// Issue 29: customers and products keyed `C-000196` and `SKU-00242` in the database train
/// the model the integers train (the keys are fixed-width, so they sort as the integers do),
/// and the export answers in those keys.
#[test]
fn string_keys_from_postgres_train_as_the_integers_and_export_in_keys() {
    let Some((url, mut client, path)) = inputs() else {
        return;
    };
    let numbers = format!("ember_cli_numbers_{}", std::process::id());
    let codes = format!("ember_cli_codes_{}", std::process::id());
    load_ml100k(&mut client, &numbers, &path);
    client
        .batch_execute(&format!(
            "CREATE TABLE {codes} AS SELECT line, 'C-' || lpad(u::text, 6, '0') AS u, \
             'SKU-' || lpad(i::text, 5, '0') AS i, r, ts FROM {numbers}"
        ))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, table) in [("numbers", &numbers), ("codes", &codes)] {
        let out = train(
            dir.path(),
            &config(name, &postgres_data(&url, table, "")),
            &[],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let codes_metrics = test_metrics(&dir.path().join("runs/codes"));
    assert!(codes_metrics.to_string().contains("NDCG@20"));
    assert_eq!(
        codes_metrics,
        test_metrics(&dir.path().join("runs/numbers"))
    );
    let out = ember(
        &["export", "--run", "runs/codes", "--out", "models/codes"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    fs::write(dir.path().join("who.csv"), "user\nC-000196\n").unwrap();
    let out = ember(
        &[
            "recommend",
            "--model",
            "models/codes",
            "--users",
            "who.csv",
            "--k",
            "5",
            "--out",
            "recs.csv",
            "--no-progress",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let recs = fs::read_to_string(dir.path().join("recs.csv")).unwrap();
    let rows: Vec<&str> = recs.lines().skip(1).collect();
    assert_eq!(rows.len(), 5, "{recs}");
    for row in rows {
        // user,rank,item,score
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(fields[0], "C-000196", "{recs}");
        assert!(
            fields[2].starts_with("SKU-") && fields[2].len() == 9,
            "{recs}"
        );
    }
    client
        .batch_execute(&format!("DROP TABLE {codes}; DROP TABLE {numbers}"))
        .unwrap();
}

/// Every file under `dir`, with its contents.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            let bytes = fs::read(&path).unwrap();
            found.push((path, bytes));
        }
    }
    found
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_password_login_over_tls_keeps_the_password_out_of_every_file_and_message() {
    let Some((url, mut client, path)) = inputs() else {
        return;
    };
    let Ok(ca) = std::env::var("EMBER_TEST_POSTGRES_CA") else {
        skip("EMBER_TEST_POSTGRES_CA is not set (scripts/test_postgres.sh start makes one)");
        return;
    };
    let pid = std::process::id();
    let (table, role) = (format!("ember_cli_tls_{pid}"), format!("ember_tls_{pid}"));
    let secret = format!("Xq7-secret-{pid}");
    load_ml100k(&mut client, &table, &path);
    client
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD '{secret}';
             GRANT SELECT ON {table} TO {role}"
        ))
        .unwrap();
    let port = url
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("port="))
        .unwrap_or("5432");
    let tcp = format!("postgresql://{role}@127.0.0.1:{port}/postgres?sslmode=require");
    let data = postgres_data(&tcp, &table, "password_env = \"EMBER_TEST_SECRET\"");
    let dir = tempfile::tempdir().unwrap();
    let tls = [
        ("SSL_CERT_FILE", ca.as_str()),
        ("SSL_CERT_DIR", "/nonexistent"),
    ];

    // A wrong password: refused, no secret in the message, no run directory.
    let mut env = tls.to_vec();
    env.push(("EMBER_TEST_SECRET", "not-the-password"));
    let out = train(dir.path(), &config("tls", &data), &env);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(
        err.lines().last().unwrap(),
        format!(
            "error: the PostgreSQL server at host 127.0.0.1, port {port} refused the login of \
             user `{role}`: FATAL: password authentication failed for user \"{role}\""
        )
    );
    assert!(!err.contains("not-the-password"), "{err}");
    assert!(!dir.path().join("runs").exists());

    // No password anywhere (an empty home, no variable): the server's demand is explained.
    let home = tempfile::tempdir().unwrap();
    let home_dir = home.path().to_str().unwrap();
    let bare = postgres_data(&tcp, &table, "");
    let mut env = tls.to_vec();
    env.push(("HOME", home_dir));
    let out = train(dir.path(), &config("tls", &bare), &env);
    let err = stderr(&out);
    assert_eq!(
        err.lines().last().unwrap(),
        format!(
            "error: the PostgreSQL server at host 127.0.0.1, port {port} refused the login of \
             user `{role}`: the server asks for a password and none was given: set PGPASSWORD, \
             add a line to ~/.pgpass, or name an environment variable in data.password_env"
        )
    );
    assert!(!dir.path().join("runs").exists());

    // The right one from ~/.pgpass, over TLS: trained, and the password is nowhere in the run
    // or its output.
    let pgpass = home.path().join(".pgpass");
    fs::write(
        &pgpass,
        format!("# test\n127.0.0.1:{port}:postgres:{role}:{secret}\n"),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&pgpass, fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = train(dir.path(), &config("tls", &bare), &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let files = files_under(&dir.path().join("runs/tls"));
    assert!(
        files.iter().any(|(p, _)| p.ends_with("log.txt")),
        "{files:?}"
    );
    for (path, bytes) in files
        .iter()
        .chain([(PathBuf::from("stderr"), out.stderr.clone())].iter())
    {
        assert!(
            !contains(bytes, &secret),
            "{} holds the password",
            path.display()
        );
    }
    assert!(!contains(&out.stdout, &secret));

    // The server's certificate checked: without the test CA the handshake fails.
    let out = train(
        dir.path(),
        &config("untrusted", &data),
        &[
            ("EMBER_TEST_SECRET", secret.as_str()),
            ("SSL_CERT_FILE", "/nonexistent"),
            ("SSL_CERT_DIR", "/nonexistent"),
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "error: cannot reach the PostgreSQL server at host 127.0.0.1, port {port}: error performing TLS handshake"
        )) && !err.contains(&secret),
        "{err}"
    );
    assert!(!dir.path().join("runs/untrusted").exists());
    client
        .batch_execute(&format!("DROP TABLE {table}; DROP ROLE {role}"))
        .unwrap();
}

#[test]
fn refusals_leave_no_run_directory() {
    let Some((url, _client, _)) = inputs() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            postgres_data("host=127.0.0.1 port=1 user=ember dbname=ember", "t", ""),
            "error: cannot reach the PostgreSQL server at host 127.0.0.1, port 1: ",
        ),
        (
            postgres_data("postgresql://ember:hunter2@127.0.0.1:1/ember", "t", ""),
            "error: data.url holds a password: ember never takes one from the config",
        ),
        (
            postgres_data(&url, "t", "password_env = \"EMBER_TEST_NOT_SET_ANYWHERE\""),
            "error: data.password_env names `EMBER_TEST_NOT_SET_ANYWHERE`, which is not set (or not valid UTF-8)",
        ),
        (
            postgres_data(&url, "ember_no_such_table", ""),
            "refused data.query: ERROR: relation \"ember_no_such_table\" does not exist",
        ),
    ];
    for (data, expected) in cases {
        let out = train(dir.path(), &config("refused", &data), &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(expected) && !err.contains("hunter2"), "{err}");
        assert!(!dir.path().join("runs").exists(), "{err}");
    }
}

/// Issue 29's acceptance, end to end through the CLI: ML-100K with `C-…` customers and
/// `SKU-…` products in PostgreSQL, their attributes in two more tables (age, gender,
/// occupation; title and genres). Trained from the database with the attribute tables, then
/// exported: `recommend`, `campaign`, `segments`, `nba`, `serve` and `report` all speak the
/// original keys and the products' names, and never an internal integer.
#[test]
fn a_shop_in_postgres_with_attributes_speaks_keys_and_names_everywhere() {
    let Some((url, mut client, path)) = inputs() else {
        return;
    };
    let pid = std::process::id();
    let (numbers, codes) = (format!("ember_e2e_n_{pid}"), format!("ember_e2e_c_{pid}"));
    let (customers, products) = (format!("ember_e2e_u_{pid}"), format!("ember_e2e_i_{pid}"));
    load_ml100k(&mut client, &numbers, &path);
    client
        .batch_execute(&format!(
            "CREATE TABLE {codes} AS SELECT line, 'C-' || lpad(u::text, 6, '0') AS u, \
             'SKU-' || lpad(i::text, 5, '0') AS i, r, ts FROM {numbers}"
        ))
        .unwrap();
    support::load_ml100k_attributes(&mut client, &customers, &products, &path);
    let data = format!(
        "{}\n[data.users]\nformat = \"postgres\"\nurl = \"{url}\"\nquery = \"SELECT id, age, \
         gender, occupation FROM {customers} ORDER BY id\"\nkey = \"id\"\ncolumns = [{{ column = \
         \"age\", type = \"numeric\" }}, {{ column = \"gender\", type = \"categorical\" }}, {{ \
         column = \"occupation\", type = \"categorical\" }}]\n[data.items]\nformat = \
         \"postgres\"\nurl = \"{url}\"\nquery = \"SELECT sku, title, genres FROM {products} \
         ORDER BY sku\"\nkey = \"sku\"\ncolumns = [{{ column = \"title\", type = \"name\" }}, {{ \
         column = \"genres\", type = \"multi\" }}]",
        postgres_data(&url, &codes, "")
    );
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let out = train(cwd, &config("shop", &data), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let described: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(cwd.join("runs/shop/data.json")).unwrap())
            .unwrap();
    assert_eq!(described["attributes"]["items"]["matched"], 1682);
    assert_eq!(described["attributes"]["users"]["without_row"], 0);
    let inputs = fs::read_to_string(cwd.join("runs/shop/inputs.json")).unwrap();
    assert!(
        inputs.contains(&products) && inputs.contains(&customers),
        "{inputs}"
    );
    common::ok(ember(&["export", "--run", "runs/shop", "--out", "m"], cwd));

    // recommend: the name beside each key.
    fs::write(cwd.join("who.csv"), "user\nC-000196\n").unwrap();
    let run = |args: &[&str]| common::ok(ember(args, cwd));
    run(&[
        "recommend",
        "--model",
        "m",
        "--users",
        "who.csv",
        "--k",
        "5",
        "--out",
        "r.csv",
    ]);
    for row in common::csv(&cwd.join("r.csv")) {
        assert_eq!(row["user"], "C-000196");
        assert!(row["item"].starts_with("SKU-"), "{row:?}");
        assert!(
            row["name"].contains(" (19"),
            "a title with its year: {row:?}"
        );
    }
    // campaign: the item named in its summary and its JSON.
    let said = run(&[
        "campaign",
        "--model",
        "m",
        "--item",
        "SKU-00050",
        "--budget",
        "100",
        "--out",
        "camp",
    ]);
    assert!(
        said.contains("campaign for item Star Wars (1977) [SKU-00050]"),
        "{said}"
    );
    let campaign: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(cwd.join("camp/campaign.json")).unwrap()).unwrap();
    assert_eq!(campaign["item_name"], "Star Wars (1977)");
    for row in common::csv(&cwd.join("camp/audience.csv")) {
        assert!(row["customer"].starts_with("C-"), "{row:?}");
    }
    // segments: names in the profiles and the summary.
    run(&[
        "segments",
        "--model",
        "m",
        "--k-range",
        "2..3",
        "--out",
        "seg",
        "--no-progress",
    ]);
    let profiles = common::csv(&cwd.join("seg/segments.csv"));
    assert!(
        profiles
            .iter()
            .all(|r| r["item"].starts_with("SKU-") && !r["name"].is_empty())
    );
    let summary = fs::read_to_string(cwd.join("seg/segments.json")).unwrap();
    assert!(summary.contains("Star Wars (1977)"), "{summary}");
    // nba: categories from the products' genres, names beside the keys.
    fs::write(
        cwd.join("actions.csv"),
        "id,items,value,categories\nscifi,SKU-00050;SKU-00172,3,Sci-Fi\ndrama,SKU-00100,2,Drama\n",
    )
    .unwrap();
    run(&[
        "nba",
        "--model",
        "m",
        "--actions",
        "actions.csv",
        "--category-column",
        "genres",
        "--out",
        "nba.csv",
        "--no-progress",
    ]);
    let decisions = common::csv(&cwd.join("nba.csv"));
    assert!(!decisions.is_empty());
    for row in &decisions {
        assert!(row["customer"].starts_with("C-") && row["item"].starts_with("SKU-"));
        let expected = if row["action"] == "scifi" {
            ["Star Wars (1977)", "Empire Strikes Back, The (1980)"].contains(&row["name"].as_str())
        } else {
            row["name"] == "Fargo (1996)"
        };
        assert!(expected, "{row:?}");
    }
    // serve: names on request.
    let (mut server, addr) = common::serve(cwd, "m", &[]);
    let (status, answer) = common::post(
        &addr,
        "/v1/recommend",
        r#"{"user": "C-000196", "k": 3, "names": true}"#,
    );
    server.kill().unwrap();
    assert_eq!(status, 200, "{answer}");
    for item in answer["items"].as_array().unwrap() {
        assert!(item["id"].as_str().unwrap().starts_with("SKU-"), "{answer}");
        assert!(item["name"].as_str().unwrap().contains(" (19"), "{answer}");
    }
    // report: titles, and no bare internal id where an item is shown.
    run(&[
        "report",
        "runs/shop",
        "--campaign",
        "camp",
        "--segments",
        "seg",
        "--out",
        "report.html",
    ]);
    let html = fs::read_to_string(cwd.join("report.html")).unwrap();
    assert!(
        html.contains("Campaign for Star Wars (1977) [SKU-00050]"),
        "campaign heading"
    );
    assert!(
        html.contains("[SKU-"),
        "segment items named with their keys"
    );
    client
        .batch_execute(&format!(
            "DROP TABLE {codes}; DROP TABLE {numbers}; DROP TABLE {customers}; DROP TABLE {products}"
        ))
        .unwrap();
}

/// `ember train` through ODBC (Debian's PostgreSQL driver) gives the metrics the `postgres`
/// source gives on the same table, bit for bit.
#[cfg(feature = "odbc")]
#[test]
fn odbc_training_gives_the_metrics_of_postgres() {
    let Some((url, mut client, path)) = inputs() else {
        return;
    };
    let Some(connection) = support::odbc_connection(&url, None, None) else {
        return;
    };
    let table = format!("ember_cli_odbc_{}", std::process::id());
    load_ml100k(&mut client, &table, &path);
    let dir = tempfile::tempdir().unwrap();
    let odbc = format!(
        "format = \"odbc\"\nconnection = \"{connection}\"\nquery = \"SELECT u, i, r, ts FROM \
         {table} ORDER BY line\"\nuser = \"u\"\nitem = \"i\"\nrating = \"r\"\ntimestamp = \"ts\"\n"
    );
    for (name, data) in [("direct", postgres_data(&url, &table, "")), ("odbc", odbc)] {
        let out = train(dir.path(), &config(name, &data), &[]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
    }
    let odbc_metrics = test_metrics(&dir.path().join("runs/odbc"));
    assert!(odbc_metrics.to_string().contains("NDCG@20"));
    assert_eq!(odbc_metrics, test_metrics(&dir.path().join("runs/direct")));
    client
        .batch_execute(&format!("DROP TABLE {table}"))
        .unwrap();
}

/// A password login through ODBC: the password comes only from `password_env`; a wrong one is
/// refused without being echoed and leaves no run directory; the right one trains, and the
/// password is in no file of the run, no output, and none of the driver's own logs
/// (Debian's psqlODBC writes `/tmp/psqlodbc_*.log`).
#[cfg(feature = "odbc")]
#[test]
fn odbc_passwords_come_from_the_environment_and_are_written_nowhere() {
    let Some((url, mut client, path)) = inputs() else {
        return;
    };
    let pid = std::process::id();
    let (table, role) = (
        format!("ember_cli_odbcpw_{pid}"),
        format!("ember_odbc_{pid}"),
    );
    // Characters a connection string must quote.
    let secret = format!("Zr9+se;cr}}et-{pid}");
    load_ml100k(&mut client, &table, &path);
    client
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD '{secret}';
             GRANT SELECT ON {table} TO {role}"
        ))
        .unwrap();
    let Some(connection) = support::odbc_connection(&url, Some("127.0.0.1"), Some(&role)) else {
        return;
    };
    let data = format!(
        "format = \"odbc\"\nconnection = \"{connection}\"\npassword_env = \"EMBER_TEST_SECRET\"\n\
         query = \"SELECT u, i, r, ts FROM {table} ORDER BY line\"\nuser = \"u\"\nitem = \"i\"\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = train(
        dir.path(),
        &config("pw", &data),
        &[("EMBER_TEST_SECRET", "not-the-password")],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the ODBC data source: "), "{err}");
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");
    assert!(!dir.path().join("runs").exists());
    let out = train(
        dir.path(),
        &config("pw", &data),
        &[("EMBER_TEST_SECRET", secret.as_str())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let outputs = [out.stdout.clone(), out.stderr.clone()];
    let mut written = files_under(&dir.path().join("runs/pw"));
    for entry in fs::read_dir("/tmp").unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("psqlodbc") {
            written.push((entry.path(), fs::read(entry.path()).unwrap_or_default()));
        }
    }
    written.extend(outputs.map(|o| (PathBuf::from("the output of ember train"), o)));
    for (path, bytes) in &written {
        assert!(
            !contains(bytes, &secret),
            "the password is in {}",
            path.display()
        );
    }
    client
        .batch_execute(&format!("DROP TABLE {table}; DROP ROLE {role}"))
        .unwrap();
}
