//! Readers: every preset format, and a clear error (file and line) for each kind of bad input.

use ember_data::{Column, DataError, DataSource, Preprocess, Split, prepare};
use std::fs;
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, content).unwrap();
    path
}

fn delimited(
    path: PathBuf,
    separator: &str,
    header: bool,
    user: Column,
    item: Column,
) -> DataSource {
    DataSource::Delimited {
        path,
        separator: separator.into(),
        header,
        user,
        item,
        rating: None,
        timestamp: None,
    }
}

#[test]
fn csv_with_header_and_named_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "a.csv",
        "uid,iid,score,ts\n1,10,5,100\n2,10,3,50\n1,11,4,200\n",
    );
    let src = DataSource::Delimited {
        path,
        separator: ",".into(),
        header: true,
        user: Column::Name("uid".into()),
        item: Column::Name("iid".into()),
        rating: Some(Column::Name("score".into())),
        timestamp: Some(Column::Name("ts".into())),
    };
    let data = src.load().unwrap().interactions;
    assert_eq!(data.users, vec![1, 2, 1]);
    assert_eq!(data.items, vec![10, 10, 11]);
    assert_eq!(data.ratings.unwrap(), vec![5.0, 3.0, 4.0]);
    assert_eq!(data.timestamps.unwrap(), vec![100, 50, 200]);
}

#[test]
fn movielens_presets() {
    let dir = tempfile::tempdir().unwrap();
    let ml100k = write(
        dir.path(),
        "u.data",
        "196\t242\t3\t881250949\n186\t302\t3\t891717742\n",
    );
    let d = DataSource::Movielens100k { path: ml100k }
        .load()
        .unwrap()
        .interactions;
    assert_eq!((d.users, d.items), (vec![196, 186], vec![242, 302]));
    let ml1m = write(
        dir.path(),
        "ratings.dat",
        "1::1193::5::978300760\n1::661::3::978302109\n",
    );
    let d = DataSource::Movielens1m { path: ml1m }
        .load()
        .unwrap()
        .interactions;
    assert_eq!(d.items, vec![1193, 661]);
    assert_eq!(d.ratings.unwrap(), vec![5.0, 3.0]);
    assert_eq!(d.timestamps.unwrap(), vec![978300760, 978302109]);
}

#[test]
fn sequence_formats() {
    let dir = tempfile::tempdir().unwrap();
    let sasrec = write(dir.path(), "s.txt", "1 5\n1 7\n2 5\n");
    let d = DataSource::Sasrec { path: sasrec }
        .load()
        .unwrap()
        .interactions;
    assert_eq!((d.users, d.items), (vec![1, 1, 2], vec![5, 7, 5]));
    let seq = write(dir.path(), "q.txt", "1 5 7 9\n2 3 4\n");
    let d = DataSource::Sequences { path: seq }
        .load()
        .unwrap()
        .interactions;
    assert_eq!(d.users, vec![1, 1, 1, 2, 2]);
    assert_eq!(d.items, vec![5, 7, 9, 3, 4]);
}

#[test]
fn parquet_file() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.parquet");
    let mut df = df!("u" => [3i64, 4, 3], "i" => [1i32, 2, 2], "r" => [1.0f64, 2.0, 5.0]).unwrap();
    ParquetWriter::new(fs::File::create(&path).unwrap())
        .finish(&mut df)
        .unwrap();
    let src = DataSource::Parquet {
        path: path.clone(),
        user: "u".into(),
        item: "i".into(),
        rating: Some("r".into()),
        timestamp: None,
    };
    let d = src.load().unwrap().interactions;
    assert_eq!((d.users, d.items), (vec![3, 4, 3], vec![1, 2, 2]));
    assert_eq!(d.ratings.unwrap(), vec![1.0, 2.0, 5.0]);
    let missing = DataSource::Parquet {
        path,
        user: "user".into(),
        item: "i".into(),
        rating: None,
        timestamp: None,
    };
    let err = missing.load().unwrap_err().to_string();
    assert!(
        err.contains("no column `user`") && err.contains("u, i, r"),
        "{err}"
    );
}

#[test]
fn ncf_files_with_fixed_split() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "x.train.rating",
        "0\t0\t5\t1\n0\t1\t5\t2\n0\t2\t5\t3\n1\t0\t4\t1\n1\t2\t4\t2\n",
    );
    write(dir.path(), "x.test.rating", "0\t3\t5\t9\n1\t1\t4\t9\n");
    // User 1's negatives repeat the held-out item 1 (the upstream ML-1M quirk): it is dropped.
    write(
        dir.path(),
        "x.test.negative",
        "(0,3)\t4\t5\n(1,1)\t4\t1\t3\n",
    );
    let src = DataSource::Ncf {
        prefix: dir.path().join("x"),
    };
    let (ds, _) = prepare(&src, &Preprocess::default(), &Split::Fixed).unwrap();
    assert_eq!(ds.num_items(), 6);
    assert_eq!(ds.test[0], vec![3]);
    // Validation: the latest training interaction, held out of training.
    assert_eq!(ds.valid[0], vec![2]);
    assert_eq!(ds.train[0], vec![0, 1]);
    assert_eq!(ds.test_negatives.as_ref().unwrap()[1], vec![4, 3]);
    // Every test user needs negatives; a user the data does not know is an error, not a panic.
    write(
        dir.path(),
        "y.train.rating",
        "0\t0\t5\t1\n0\t1\t5\t2\n1\t0\t4\t1\n1\t2\t4\t2\n",
    );
    write(dir.path(), "y.test.rating", "0\t3\t5\t9\n1\t1\t4\t9\n");
    write(dir.path(), "y.test.negative", "(0,3)\t4\t5\n");
    let missing = DataSource::Ncf {
        prefix: dir.path().join("y"),
    };
    let err = prepare(&missing, &Preprocess::default(), &Split::Fixed)
        .unwrap_err()
        .to_string();
    assert!(err.contains("test user 1 has no negatives"), "{err}");
    write(
        dir.path(),
        "y.test.negative",
        "(0,3)\t4\t5\n(1,1)\t4\n(7,1)\t4\n",
    );
    let err = prepare(&missing, &Preprocess::default(), &Split::Fixed)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("user 7, who has no training or test interaction"),
        "{err}"
    );
    let k_core = Preprocess {
        min_user_interactions: 2,
        ..Default::default()
    };
    let err = prepare(&src, &k_core, &Split::Fixed)
        .unwrap_err()
        .to_string();
    assert!(err.contains("k-core"), "{err}");
    // The NCF format brings its own split.
    let err = prepare(&src, &Preprocess::default(), &Split::LeaveOneOut)
        .unwrap_err()
        .to_string();
    assert!(err.contains("kind = \"fixed\""), "{err}");
}

fn load_err(src: DataSource) -> String {
    match src.load() {
        Ok(_) => panic!("expected an error"),
        Err(e) => chain(&e),
    }
}

/// An error and its causes, as the command line prints them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

#[test]
fn malformed_line_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "u.data",
        "1\t2\t3\t4\n5\t6\t7\t8\n9\t10\n11\t12\t13\t14\n",
    );
    let err = load_err(DataSource::Movielens100k { path: path.clone() });
    assert!(err.starts_with(&format!("{}:3:", path.display())), "{err}");
    assert!(err.contains("expected 4 fields"), "{err}");
}

#[test]
fn non_numeric_id_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", "user,item\n1,2\n3,abc\n");
    let err = load_err(delimited(
        path.clone(),
        ",",
        true,
        Column::Name("user".into()),
        Column::Name("item".into()),
    ));
    assert!(err.starts_with(&format!("{}:3:", path.display())), "{err}");
    assert!(err.contains("item `abc` is not an integer id"), "{err}");
    let seq = write(dir.path(), "q.txt", "1 5 7\n2 x\n");
    let err = load_err(DataSource::Sequences { path: seq });
    assert!(
        err.contains("q.txt:2: item `x` is not an integer id"),
        "{err}"
    );
}

#[test]
fn missing_column_lists_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", "user,item\n1,2\n");
    let err = load_err(delimited(
        path,
        ",",
        true,
        Column::Name("user".into()),
        Column::Name("movie".into()),
    ));
    assert!(
        err.contains("no column `movie` (the file has: user, item)"),
        "{err}"
    );
}

#[test]
fn empty_and_absent_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "empty.tsv", "");
    let err = load_err(DataSource::Movielens100k { path });
    assert!(
        err.contains("empty.tsv") && (err.contains("no interactions") || err.contains("empty")),
        "{err}"
    );
    let header_only = write(dir.path(), "h.csv", "user,item\n");
    let err = load_err(delimited(
        header_only,
        ",",
        true,
        Column::Name("user".into()),
        Column::Name("item".into()),
    ));
    assert!(err.contains("no interactions"), "{err}");
    let err = load_err(DataSource::Movielens100k {
        path: dir.path().join("nope.data"),
    });
    assert!(err.contains("nope.data"), "{err}");
    assert!(matches!(
        DataSource::Sasrec {
            path: dir.path().join("nope")
        }
        .load(),
        Err(DataError::Io { .. })
    ));
}
