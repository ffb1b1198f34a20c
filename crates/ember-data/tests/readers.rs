//! Readers: every preset format, and a clear error (file and line) for each kind of bad input.

use ember_data::{Column, DataError, DataSource, Encoding, Preprocess, Split, prepare};
use ember_spec::KeyType;
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
        weight: None,
        max_line_bytes: None,
        encoding: None,
        key_type: KeyType::Integer,
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
        weight: None,
        max_line_bytes: None,
        encoding: None,
        key_type: KeyType::Auto,
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
        weight: None,
        key_type: KeyType::Auto,
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
        weight: None,
        key_type: KeyType::Auto,
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
        err.contains(
            "y.test.negative:3: the negatives file names user 7, who has no training or test interaction"
        ),
        "{err}"
    );
    write(
        dir.path(),
        "y.test.negative",
        "(0,3)\t4\t5\n(1,1)\t4\n(0,3)\t5\n",
    );
    let err = prepare(&missing, &Preprocess::default(), &Split::Fixed)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("y.test.negative:3: the negatives file lists user 0 twice (first at line 1)"),
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

// ---------------------------------------------------------------------------------------------
// The bad-input catalogue (docs/bad-inputs.md): one test per case, named in the catalogue.

fn write_bytes(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, content).unwrap();
    path
}

/// A delimited source with named user, item, rating and timestamp columns.
fn rated_csv(path: PathBuf, separator: &str) -> DataSource {
    DataSource::Delimited {
        path,
        separator: separator.into(),
        header: true,
        user: Column::Name("user".into()),
        item: Column::Name("item".into()),
        rating: Some(Column::Name("rating".into())),
        timestamp: Some(Column::Name("ts".into())),
        weight: None,
        max_line_bytes: None,
        encoding: None,
        key_type: KeyType::Auto,
    }
}

fn named(path: PathBuf) -> DataSource {
    delimited(
        path,
        ",",
        true,
        Column::Name("user".into()),
        Column::Name("item".into()),
    )
}

fn parquet(path: &Path, df: &mut polars::prelude::DataFrame) -> DataSource {
    use polars::prelude::*;
    ParquetWriter::new(fs::File::create(path).unwrap())
        .finish(df)
        .unwrap();
    parquet_source(path, true)
}

fn parquet_source(path: &Path, rated: bool) -> DataSource {
    DataSource::Parquet {
        path: path.to_owned(),
        user: "user".into(),
        item: "item".into(),
        rating: rated.then(|| "rating".into()),
        timestamp: None,
        weight: None,
        key_type: KeyType::Integer,
    }
}

/// What a message may never hold: a character that drives the terminal.
fn assert_printable(message: &str) {
    assert!(
        !message.chars().any(|c| c.is_control()),
        "a raw control character in {message:?}"
    );
}

#[test]
fn wrong_separator_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let tsv = write(dir.path(), "a.tsv", "user\titem\n1\t2\n");
    let err = load_err(named(tsv));
    assert!(
        err.contains(
            "no column `user` (the file has: user\\titem); the line holds tabs: is the separator \"\\t\""
        ),
        "{err}"
    );
    // Without a header: a `::` file read as tab-separated.
    let dat = write(dir.path(), "ratings.dat", "1::1193::5::978300760\n");
    let err = load_err(DataSource::Movielens100k { path: dat });
    assert!(
        err.contains(
            "ratings.dat:1: expected 4 fields separated by \"\\t\", found 1; the line holds `::`"
        ),
        "{err}"
    );
}

#[test]
fn unsupported_separator_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", "user,item\n1,2\n");
    for bad in ["", "ab", "\n"] {
        let err = load_err(delimited(
            path.clone(),
            bad,
            false,
            Column::Index(0),
            Column::Index(1),
        ));
        assert!(err.contains("is not supported: use one character"), "{err}");
    }
}

#[test]
fn extra_columns_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "a.csv",
        "title,user,genre,item,year\nA film,1,drama,10,1999\nAnother,2,comedy,11,2001\n",
    );
    let d = load(named(path)).interactions;
    assert_eq!((d.users, d.items), (vec![1, 2], vec![10, 11]));
}

#[test]
fn ragged_line_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", "user,item\n1,2\n3,4,5\n");
    let err = load_err(named(path));
    assert!(
        err.contains("a.csv:3: expected 2 fields separated by \",\", found 3"),
        "{err}"
    );
}

#[test]
fn duplicate_header_name_is_ambiguous() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", "user,item,user\n1,2,3\n");
    let err = load_err(named(path));
    assert!(
        err.contains("a.csv:1: the header names `user` 2 times (0-based positions [0, 2])"),
        "{err}"
    );
}

#[test]
fn negative_and_64_bit_ids_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "a.csv",
        "user,item\n-5,2147483648\n9223372036854775807,-9223372036854775808\n",
    );
    let d = load(named(path)).interactions;
    assert_eq!(d.users, vec![-5, i64::MAX]);
    assert_eq!(d.items, vec![2_147_483_648, i64::MIN]);
}

#[test]
fn id_beyond_64_bits_is_an_error_not_a_wrap() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "a.csv",
        "user,item\n1,2\n9223372036854775808,3\n",
    );
    let err = load_err(named(path));
    assert!(
        err.contains("a.csv:3: user `9223372036854775808` is not an integer id ember can hold: it lies outside the 64-bit range"),
        "{err}"
    );
    // In Parquet: a u64 above i64::MAX.
    use polars::prelude::*;
    let file = dir.path().join("u64.parquet");
    let mut df = df!("user" => [1u64, u64::MAX], "item" => [1i64, 2]).unwrap();
    let err =
        load_err(parquet_source_written(&file, &mut df)).replace(&*file.to_string_lossy(), "F");
    assert!(
        err.contains("F: column `user`, row 2: user `18446744073709551615` is not an integer id ember can hold"),
        "{err}"
    );
}

#[test]
fn whole_number_decimals_are_ids_fractions_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", "user,item\n1.0,2.\n");
    let d = load(named(path)).interactions;
    assert_eq!((d.users, d.items), (vec![1], vec![2]));
    let path = write(dir.path(), "b.csv", "user,item\n1,2\n1,2.5\n");
    let err = load_err(named(path));
    assert!(
        err.contains("b.csv:3: item `2.5` is not an integer id: it has a fractional part"),
        "{err}"
    );
    let path = write(dir.path(), "c.csv", "user,item,rating,ts\n1,2,5,100.5\n");
    let err = load_err(rated_csv(path, ","));
    assert!(
        err.contains("c.csv:2: timestamp `100.5` is not an integer: it has a fractional part"),
        "{err}"
    );
}

#[test]
fn nan_inf_and_empty_ratings_are_refused_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    for (value, message) in [
        ("NaN", "rating `NaN` is not a finite number"),
        ("inf", "rating `inf` is not a finite number"),
        ("-infinity", "rating `-infinity` is not a finite number"),
        ("1e39", "rating `1e39` is not a finite number"),
        ("", "rating is empty: expected a finite number"),
        ("five", "rating `five` is not a number"),
    ] {
        let path = write(
            dir.path(),
            "r.csv",
            &format!("user,item,rating,ts\n1,2,4,10\n1,3,{value},11\n"),
        );
        let err = load_err(rated_csv(path, ","));
        assert!(
            err.contains(&format!("r.csv:3: {message}")),
            "{value}: {err}"
        );
    }
    // Under implicit_threshold the read stops at the same line: a NaN is never silently dropped.
    let path = write(
        dir.path(),
        "r.csv",
        "user,item,rating,ts\n1,2,4,10\n1,3,NaN,11\n",
    );
    let threshold = Preprocess {
        implicit_threshold: Some(3.5),
        ..Default::default()
    };
    let err = prepare(&rated_csv(path, ","), &threshold, &Split::LeaveOneOut)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("r.csv:3: rating `NaN` is not a finite number"),
        "{err}"
    );
}

#[test]
fn parquet_nan_rating_names_its_row() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.parquet");
    let mut df = df!(
        "user" => [1i64, 1, 2],
        "item" => [1i64, 2, 3],
        "rating" => [4.0f64, f64::NAN, f64::INFINITY]
    )
    .unwrap();
    let err = load_err(parquet(&file, &mut df)).replace(&*file.to_string_lossy(), "F");
    assert!(
        err.contains("F: column `rating`, row 2: rating `NaN` is not a finite number"),
        "{err}"
    );
    let mut df = df!("user" => [1i64], "item" => [1i64], "rating" => [Some(4.0f64)]).unwrap();
    df = df
        .vstack(&df!("user" => [2i64], "item" => [2i64], "rating" => [None::<f64>]).unwrap())
        .unwrap();
    let err = load_err(parquet(&file, &mut df)).replace(&*file.to_string_lossy(), "F");
    assert!(
        err.contains("F: column `rating`, row 2: rating is missing (null; 1 in the column)"),
        "{err}"
    );
}

#[test]
fn duplicate_rows_keep_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "a.csv",
        "user,item,rating,ts\n1,10,2,5\n1,10,4,9\n1,11,3,1\n1,12,3,2\n1,13,3,3\n",
    );
    let (data, stats) = prepare(
        &rated_csv(path.clone(), ","),
        &Preprocess::default(),
        &Split::LeaveOneOut,
    )
    .unwrap();
    assert_eq!((stats.read, stats.duplicates, stats.kept), (5, 1, 4));
    // The copy at t=9 (rating 4) is the one kept: it is the latest, so it is the test item.
    assert_eq!(data.item_ids.external(data.test[0][0]), 10);
    assert_eq!(data.ratings.unwrap().test[0], vec![4.0]);
    let keep_all = Preprocess {
        dedup: false,
        ..Default::default()
    };
    let (_, stats) = prepare(&rated_csv(path, ","), &keep_all, &Split::LeaveOneOut).unwrap();
    assert_eq!((stats.duplicates, stats.kept), (0, 5));
}

#[test]
fn unsorted_timestamps_split_by_time() {
    let dir = tempfile::tempdir().unwrap();
    // File order 40, 10, 30, 20: the latest (item 1) is tested, the second latest validates.
    let path = write(
        dir.path(),
        "a.csv",
        "user,item,rating,ts\n7,1,5,40\n7,2,5,10\n7,3,5,30\n7,4,5,20\n",
    );
    let (data, _) = prepare(
        &rated_csv(path, ","),
        &Preprocess::default(),
        &Split::LeaveOneOut,
    )
    .unwrap();
    let external =
        |items: &[u32]| -> Vec<i64> { items.iter().map(|&i| data.item_ids.external(i)).collect() };
    assert_eq!(external(&data.test[0]), vec![1]);
    assert_eq!(external(&data.valid[0]), vec![3]);
    assert_eq!(
        external(&data.train[0]),
        vec![2, 4],
        "training items in time order"
    );
}

#[test]
fn empty_whitespace_and_header_only_files() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [
        ("e.csv", ""),
        ("w.csv", " \n\n\t\r\n"),
        ("h.csv", "user,item\n\n"),
    ] {
        let err = load_err(named(write(dir.path(), name, content)));
        assert!(
            err.contains(&format!("{name}: no interactions (the file is empty")),
            "{err}"
        );
    }
    for preset in [
        DataSource::Sasrec {
            path: write(dir.path(), "s.txt", "\n"),
        },
        DataSource::Sequences {
            path: write(dir.path(), "q.txt", ""),
        },
    ] {
        assert!(load_err(preset).contains("no interactions"));
    }
}

#[test]
fn binary_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let png = write_bytes(
        dir.path(),
        "a.csv",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
    );
    let err = load_err(named(png));
    assert!(
        err.contains("a.csv:3: a NUL byte: this is not a text file (expected lines of text)"),
        "{err}"
    );
    // A Parquet file read as text, and text read as Parquet.
    use polars::prelude::*;
    let file = dir.path().join("x.parquet");
    let mut df = df!("user" => [1i64], "item" => [2i64], "rating" => [3.0f64]).unwrap();
    parquet(&file, &mut df);
    let err = load_err(DataSource::Sequences { path: file });
    assert!(err.contains("a NUL byte: this is not a text file"), "{err}");
    let text = write(dir.path(), "t.parquet", "user,item\n1,2\n");
    let err = load_err(parquet_source(&text, false));
    assert!(
        err.contains("t.parquet: not a readable Parquet file: "),
        "{err}"
    );
    assert_printable(&err);
}

#[test]
fn crlf_line_endings_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "a.csv",
        "user,item,rating,ts\r\n1,10,4.5,100\r\n2,11,3,200\r\n\r\n",
    );
    let d = load(rated_csv(path, ",")).interactions;
    assert_eq!((d.users, d.items), (vec![1, 2], vec![10, 11]));
    assert_eq!(d.ratings.unwrap(), vec![4.5, 3.0]);
    assert_eq!(d.timestamps.unwrap(), vec![100, 200]);
    let ml = write(dir.path(), "u.data", "1\t2\t3\t4\r\n5\t6\t7\t8\r\n");
    let d = load(DataSource::Movielens100k { path: ml }).interactions;
    assert_eq!(d.timestamps.unwrap(), vec![4, 8]);
    let seq = write(dir.path(), "q.txt", "1 5 7\r\n2 3\r\n");
    let d = load(DataSource::Sequences { path: seq }).interactions;
    assert_eq!(d.items, vec![5, 7, 3]);
}

#[test]
fn utf8_bom_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", "\u{feff}user,item\n1,2\n");
    let d = load(named(path)).interactions;
    assert_eq!((d.users, d.items), (vec![1], vec![2]));
    let path = write(dir.path(), "u.data", "\u{feff}196\t242\t3\t881250949\n");
    let d = load(DataSource::Movielens100k { path }).interactions;
    assert_eq!(d.users, vec![196]);
    // A BOM anywhere else is data, and shown escaped.
    let path = write(dir.path(), "b.csv", "user,item\n\u{feff}1,2\n");
    let err = load_err(named(path));
    assert!(
        err.contains("b.csv:2: user `\\u{feff}1` is not an integer id"),
        "{err}"
    );
}

/// A delimited source of `user` and `item` (by name) in `encoding`.
fn encoded(path: PathBuf, separator: &str, encoding: Option<Encoding>) -> DataSource {
    DataSource::Delimited {
        path,
        separator: separator.into(),
        header: true,
        user: Column::Name("user".into()),
        item: Column::Name("item".into()),
        rating: None,
        timestamp: None,
        max_line_bytes: None,
        encoding,
        weight: None,
        key_type: Default::default(),
    }
}

/// In UTF-8 (the default), a byte that is not UTF-8 is refused in a column ember reads, with
/// its line and column and the setting for Latin-1, and let pass in a column it does not read
/// (a title); with `encoding = "latin1"` each byte is its own character.
#[test]
fn latin1_bytes_are_refused_where_read_in_utf8_and_decoded_in_latin1() {
    let dir = tempfile::tempdir().unwrap();
    let titled = write_bytes(
        dir.path(),
        "titled.csv",
        b"title,user,item\n\"Caf\xe9, Paris\",1,10\nJos\xe9,2,10\n",
    );
    for encoding in [None, Some(Encoding::Utf8), Some(Encoding::Latin1)] {
        let d = load(encoded(titled.clone(), ",", encoding)).interactions;
        assert_eq!(
            (d.users, d.items),
            (vec![1, 2], vec![10, 10]),
            "{encoding:?}"
        );
    }
    let bad = write_bytes(dir.path(), "bad.csv", b"user,item\n1,10\n2,1\xe90\n");
    let message = "bad.csv:3: not valid UTF-8 (byte 0xE9 at column 4, in the item field); if \
                   the file is Latin-1, set encoding = \"latin1\" in [data]";
    for encoding in [None, Some(Encoding::Utf8)] {
        let err = load_err(encoded(bad.clone(), ",", encoding));
        assert!(err.ends_with(message), "{err}");
    }
    // Decoded as Latin-1, `1é0` is a string key (so the item column is one of strings).
    let d = load(encoded(bad, ",", Some(Encoding::Latin1))).interactions;
    let items: Vec<String> = d
        .items
        .iter()
        .map(|&c| d.item_keys.key(c).to_string())
        .collect();
    assert_eq!(items, ["10", "1é0"]);
    // A Latin-1 separator (§, byte 0xA7) is the configured character.
    let section = write_bytes(dir.path(), "s.csv", b"user\xa7item\n1\xa710\n");
    let d = load(encoded(section, "§", Some(Encoding::Latin1))).interactions;
    assert_eq!((d.users, d.items), (vec![1], vec![10]));
    // Formats without the setting read UTF-8, and every field they read.
    let path = write_bytes(dir.path(), "u.data", b"1\t2\t3\t8\xe9\n");
    let err = load_err(DataSource::Movielens100k { path });
    assert!(
        err.ends_with("u.data:1: not valid UTF-8 (byte 0xE9 at column 8, in the timestamp field)"),
        "{err}"
    );
    let path = write_bytes(dir.path(), "s.txt", b"1 2 3\n4 5 \xff\n");
    let err = load_err(DataSource::Sequences { path });
    assert!(
        err.ends_with("s.txt:2: not valid UTF-8 (byte 0xFF at column 5)"),
        "{err}"
    );
}

#[test]
fn quoted_csv_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "a.csv",
        "\"user\",\"title\",\"item\"\n\"1\",\"Heat, the \"\"film\"\"\",\"10\"\n2,\"two\nlines\",11\n3,x,\"bad\n",
    );
    let err = load_err(named(path));
    assert!(
        err.contains("a.csv:5: a quoted field is never closed"),
        "{err}"
    );
    let path = write(
        dir.path(),
        "b.csv",
        "\"user\",\"title\",\"item\"\n\"1\",\"Heat, the \"\"film\"\"\",\"10\"\n2,\"two\nlines\",11\n3,x,ab\n",
    );
    let err = load_err(named(path));
    assert!(
        err.contains("b.csv:5: item `ab` is not an integer id"),
        "{err}"
    );
}

#[test]
fn ansi_escape_in_a_file_is_escaped_in_messages() {
    let dir = tempfile::tempdir().unwrap();
    let red = "\u{1b}[31mred\u{1b}[0m\u{7}";
    // A field value.
    let path = write(dir.path(), "a.csv", &format!("user,item\n1,{red}\n"));
    let err = load_err(named(path));
    assert_printable(&err);
    assert!(
        err.contains("item `\\u{1b}[31mred\\u{1b}[0m\\u{7}` is not an integer id"),
        "{err}"
    );
    // A header name.
    let path = write(dir.path(), "b.csv", &format!("{red},item\n1,2\n"));
    let err = load_err(named(path));
    assert_printable(&err);
    assert!(err.contains("(the file has: \\u{1b}[31mred"), "{err}");
    // A long value is cut.
    let long = format!("{}{red}", "9".repeat(200));
    let path = write(dir.path(), "c.csv", &format!("user,item\n1,{long}\n"));
    let err = load_err(named(path));
    assert!(
        err.contains(&format!("item `{}…` is not", "9".repeat(40))),
        "{err}"
    );
    // Sequences and the NCF negatives file.
    let path = write(dir.path(), "q.txt", &format!("1 {red}\n"));
    assert_printable(&load_err(DataSource::Sequences { path }));
    // A Parquet column name and string value.
    use polars::prelude::*;
    let file = dir.path().join("x.parquet");
    let mut df = df!(red => [1i64], "item" => [2i64], "rating" => [3.0f64]).unwrap();
    let err = load_err(parquet(&file, &mut df));
    assert_printable(&err);
    let mut df = df!("user" => [red], "item" => [2i64], "rating" => [3.0f64]).unwrap();
    let err = load_err(parquet(&file, &mut df));
    assert_printable(&err);
    assert!(err.contains("user `\\u{1b}[31mred"), "{err}");
}

#[test]
fn parquet_float_ids_are_not_truncated_and_merged() {
    // The hostile tester's file: item ids 0.1, 0.2, …, 3.0 once read as 4 items.
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.parquet");
    let items: Vec<f64> = (1..=30).map(|i| i as f64 / 10.0).collect();
    let users: Vec<i64> = (0..30).collect();
    let mut df = df!("user" => users, "item" => items).unwrap();
    let err =
        load_err(parquet_source_written(&file, &mut df)).replace(&*file.to_string_lossy(), "F");
    assert_eq!(
        err,
        "F: column `item`, row 1: item `0.1` is not an integer id: it has a fractional part"
    );
    // Whole-number floats (pandas writes integer columns with gaps as float64) are read.
    let mut df =
        df!("user" => [1.0f64, 2.0], "item" => [3.0f32, 4.0], "rating" => [1i32, 5]).unwrap();
    let d = load(parquet(&file, &mut df)).interactions;
    assert_eq!((d.users, d.items), (vec![1, 2], vec![3, 4]));
    assert_eq!(d.ratings.unwrap(), vec![1.0, 5.0]);
    // Beyond 2^53 a float does not hold every integer.
    let mut df = df!("user" => [1e17f64], "item" => [1i64], "rating" => [1.0f64]).unwrap();
    let err = load_err(parquet(&file, &mut df));
    assert!(
        err.contains("not an integer id ember can hold exactly"),
        "{err}"
    );
}

#[test]
fn parquet_boolean_user_column_is_not_read_as_ids() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.parquet");
    let users: Vec<bool> = (0..20).map(|u| u % 2 == 0).collect();
    let items: Vec<i64> = (0..20).collect();
    let mut df = df!("user" => users, "item" => items).unwrap();
    let err =
        load_err(parquet_source_written(&file, &mut df)).replace(&*file.to_string_lossy(), "F");
    assert_eq!(
        err,
        "F: column `user` holds booleans (true/false): expected integer ids (integers, whole-number floats, or strings of integers)"
    );
}

fn parquet_source_written(path: &Path, df: &mut polars::prelude::DataFrame) -> DataSource {
    parquet(path, df);
    parquet_source(path, false)
}

#[test]
fn parquet_string_ids_must_all_be_integers() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.parquet");
    let mut df = df!("user" => [" 1", "2", "-3"], "item" => ["10", "11", "12.0"]).unwrap();
    let d = load(parquet_source_written(&file, &mut df)).interactions;
    assert_eq!((d.users, d.items), (vec![1, 2, -3], vec![10, 11, 12]));
    let mut df = df!("user" => ["1", "u2"], "item" => [1i64, 2]).unwrap();
    let err =
        load_err(parquet_source_written(&file, &mut df)).replace(&*file.to_string_lossy(), "F");
    assert_eq!(
        err,
        "F: column `user`, row 2: user `u2` is not an integer id; the keys are declared \
         integers (key_type = \"integer\"): set key_type = \"string\" for keys such as \
         `C-000123`"
    );
    // Other types are refused by name.
    let mut df = df!("user" => [1i64], "item" => [1i64], "rating" => ["x"]).unwrap();
    let err = load_err(parquet(&file, &mut df));
    assert!(
        err.contains("column `rating`, row 1: rating `x` is not a number"),
        "{err}"
    );
    let mut df = df!("user" => [1i64], "item" => [1i64], "rating" => [true]).unwrap();
    let err = load_err(parquet(&file, &mut df));
    assert!(
        err.contains("column `rating` holds booleans (true/false): expected numbers"),
        "{err}"
    );
}

#[test]
fn parquet_null_ids_are_refused() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("n.parquet");
    let mut df = df!("user" => [Some(1i64), None, None], "item" => [1i64, 2, 3]).unwrap();
    let err =
        load_err(parquet_source_written(&file, &mut df)).replace(&*file.to_string_lossy(), "F");
    assert_eq!(
        err,
        "F: column `user`, row 2: user is missing (null; 2 in the column): expected an integer id"
    );
}

#[test]
fn parquet_dates_are_timestamps() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d.parquet");
    let mut df = df!("user" => [1i64, 1], "item" => [1i64, 2], "ts" => [3i32, 1]).unwrap();
    df.apply("ts", |c| c.cast(&DataType::Date).unwrap())
        .unwrap();
    ParquetWriter::new(fs::File::create(&file).unwrap())
        .finish(&mut df)
        .unwrap();
    let src = DataSource::Parquet {
        path: file.clone(),
        user: "user".into(),
        item: "item".into(),
        rating: None,
        timestamp: Some("ts".into()),
        weight: None,
        key_type: KeyType::Auto,
    };
    let loaded = load(src.clone());
    assert_eq!(loaded.interactions.timestamps.unwrap(), vec![3, 1]);
    // Dates count days; a millisecond datetime counts milliseconds, so its days are its values
    // over 86,400,000 (rounded down): day 2 and day 0 here.
    assert_eq!(loaded.time_unit, Some(ember_data::TimeUnit::Days));
    let timed = dir.path().join("t.parquet");
    let mut df =
        df!("user" => [1i64, 1], "item" => [1i64, 2], "ts" => [2 * 86_400_000i64 + 5, 7]).unwrap();
    df.apply("ts", |c| {
        c.cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
            .unwrap()
    })
    .unwrap();
    ParquetWriter::new(fs::File::create(&timed).unwrap())
        .finish(&mut df)
        .unwrap();
    let timed = DataSource::Parquet {
        path: timed,
        user: "user".into(),
        item: "item".into(),
        rating: None,
        timestamp: Some("ts".into()),
        weight: None,
        key_type: KeyType::Auto,
    };
    let unit = load(timed).time_unit.unwrap();
    assert_eq!(unit, ember_data::TimeUnit::Milliseconds);
    assert_eq!((unit.day(2 * 86_400_000 + 5), unit.day(7)), (2, 0));
    // A date is no id.
    let as_item = DataSource::Parquet {
        path: file,
        user: "user".into(),
        item: "ts".into(),
        rating: None,
        timestamp: None,
        weight: None,
        key_type: KeyType::Auto,
    };
    let err = load_err(as_item);
    assert!(
        err.contains("column `ts` holds values of type date: expected integer ids"),
        "{err}"
    );
}

#[test]
fn truncated_parquet_is_an_error() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.parquet");
    let users: Vec<i64> = (0..500).collect();
    let items: Vec<i64> = (0..500).map(|i| i % 37).collect();
    let ratings: Vec<f64> = (0..500).map(|i| (i % 5) as f64).collect();
    let mut df = df!("user" => users, "item" => items, "rating" => ratings).unwrap();
    parquet(&file, &mut df);
    let whole = fs::read(&file).unwrap();
    // Every cut, and every cut of the footer's last 64 bytes.
    let cuts = (0..whole.len())
        .step_by(7)
        .chain(whole.len() - 64..whole.len());
    for cut in cuts {
        let path = write_bytes(dir.path(), "cut.parquet", &whole[..cut]);
        match parquet_source(&path, true).load() {
            Ok(_) => panic!("a file cut at {cut} of {} bytes was read", whole.len()),
            Err(e) => assert_printable(&chain(&e)),
        }
    }
    let path = write_bytes(dir.path(), "cut.parquet", &whole[..whole.len() - 1]);
    let err = load_err(parquet_source(&path, true));
    assert!(
        err.contains("cut.parquet: not a readable Parquet file: "),
        "{err}"
    );
}

#[test]
fn users_too_small_for_the_split() {
    let dir = tempfile::tempdir().unwrap();
    // Two interactions per user: leave-one-out holds nothing out.
    let path = write(dir.path(), "a.csv", "user,item\n1,1\n1,2\n2,1\n2,3\n");
    let err = prepare(
        &named(path.clone()),
        &Preprocess::default(),
        &Split::LeaveOneOut,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("split leave_one_out holds nothing out: a user needs at least 3 interactions (to train on, validate and test), and the most any user has here is 2"),
        "{err}"
    );
    let ratio = Split::Ratio {
        train: 0.8,
        valid: 0.1,
        test: 0.1,
        seed: 0,
    };
    let err = prepare(&named(path.clone()), &Preprocess::default(), &ratio)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("split ratio 0.8:0.1:0.1 holds out no test interaction"),
        "{err}"
    );
    let held_out = Split::HeldOutUsers {
        valid_users: 0,
        test_users: 1,
        fold_in: 0.8,
        seed: 0,
    };
    let err = prepare(&named(path), &Preprocess::default(), &held_out)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("split held_out_users holds out no test interaction: none of the 1 test users has the 5 interactions"),
        "{err}"
    );
    // One user with 3 is enough; the small ones only train.
    let path = write(dir.path(), "b.csv", "user,item\n1,1\n1,2\n1,3\n2,1\n");
    let (data, _) = prepare(&named(path), &Preprocess::default(), &Split::LeaveOneOut).unwrap();
    assert_eq!(data.stats().test, 1);
    assert!(data.test[1].is_empty() && data.train[1].len() == 1);
}

fn load(src: DataSource) -> ember_data::Loaded {
    match src.load() {
        Ok(loaded) => loaded,
        Err(e) => panic!("{}", chain(&e)),
    }
}

#[test]
fn malformed_parquet_that_panics_polars_is_an_error() {
    // Inputs found by fuzzing (crates/ember-data/fuzz) on which polars' decoder panics.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/parquet-panics");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 5);
    for path in files {
        for rated in [true, false] {
            let mut source = parquet_source(&path, rated);
            if let DataSource::Parquet { timestamp, .. } = &mut source {
                *timestamp = rated.then(|| "timestamp".into());
            }
            match source.load() {
                Ok(_) => {}
                Err(e) => {
                    let err = e.to_string();
                    assert!(err.contains(&*path.to_string_lossy()), "{err}");
                    assert_printable(&err);
                }
            }
        }
    }
}

#[test]
fn parquet_page_declaring_a_negative_count_is_refused_before_polars_aborts() {
    // Found by setting each page-header field of a valid file to -1: polars 0.55 takes the
    // data page's `num_values` (-1) as a size and aborts on a 2^61-byte allocation, which no
    // panic guard can catch. The first column's dictionary page is page 1, its data page 2.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/parquet-aborts/negative-page-values.parquet");
    let err = load_err(parquet_source(&path, true)).replace(&*path.to_string_lossy(), "F");
    assert_eq!(
        err,
        "F: not a readable Parquet file: the file is malformed: page 2 of column `user` in \
         row group 1 declares -1 values (a count must be 0 or more)"
    );
}

#[test]
fn a_line_over_max_line_bytes_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    // Line 2 is exactly 10 bytes, line 3 is 11.
    let path = write(dir.path(), "l.csv", "user,item\n1234,56789\n1234,567890\n");
    let limited = |bytes| DataSource::Delimited {
        path: path.clone(),
        separator: ",".into(),
        header: true,
        user: Column::Name("user".into()),
        item: Column::Name("item".into()),
        rating: None,
        timestamp: None,
        weight: None,
        max_line_bytes: Some(bytes),
        encoding: None,
        key_type: KeyType::Auto,
    };
    let err = load_err(limited(10));
    assert!(
        err.ends_with(
            "l.csv:3: a line longer than 10 bytes (the limit is data.max_line_bytes): is this a \
             text file?"
        ),
        "{err}"
    );
    let read = limited(11).load().unwrap().interactions;
    assert_eq!(read.items, [56789, 567890]);
    assert_eq!(
        load_err(limited(0)),
        "data.max_line_bytes must be at least 1, got 0"
    );
}

#[test]
fn a_directory_or_a_device_is_not_a_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_err(DataSource::Movielens100k {
        path: dir.path().to_owned(),
    });
    assert!(
        err.ends_with(
            "this is a directory, not a regular file: ember reads its data from a file, more \
             than once (to fingerprint it, to parse it, and later to check that it is unchanged)"
        ),
        "{err}"
    );
    let err = chain(&ember_data::fingerprint(Path::new("/dev/null")).unwrap_err());
    assert!(
        err.starts_with("/dev/null: this is a character device, not a regular file"),
        "{err}"
    );
    // Read once (no fingerprint), an endless device stops at its first byte.
    let err = load_err(DataSource::Sasrec {
        path: "/dev/zero".into(),
    });
    assert_eq!(
        err,
        "/dev/zero:1: a NUL byte: this is not a text file (expected lines of text)"
    );
}

/// A CSV with a `plays` weight column beside its rating.
fn weighted_csv(path: PathBuf) -> DataSource {
    DataSource::Delimited {
        path,
        separator: ",".into(),
        header: true,
        user: Column::Name("user".into()),
        item: Column::Name("item".into()),
        rating: Some(Column::Name("rating".into())),
        timestamp: Some(Column::Name("ts".into())),
        weight: Some(Column::Name("plays".into())),
        max_line_bytes: None,
        encoding: None,
        key_type: Default::default(),
    }
}

#[test]
fn weights_are_read_summed_over_repeats_and_split_with_their_items() {
    use ember_data::{WeightSource, Weights, prepare_weighted};
    let dir = tempfile::tempdir().unwrap();
    // User 1 plays item 10 twice (2 + 5), then 11 and 12; user 2 has items 10, 11, 12.
    let path = write(
        dir.path(),
        "w.csv",
        "user,item,rating,ts,plays\n1,10,4,1,2\n1,11,3,2,0.5\n1,10,5,3,5\n1,12,1,4,1\n2,10,2,1,3\n2,11,4,2,4\n2,12,5,3,6\n",
    );
    let read = weighted_csv(path.clone()).load().unwrap().interactions;
    assert_eq!(
        read.weights.unwrap(),
        vec![2.0, 0.5, 5.0, 1.0, 3.0, 4.0, 6.0]
    );
    let weights = Weights::default();
    let (data, stats) = prepare_weighted(
        &weighted_csv(path.clone()),
        &Preprocess::default(),
        &Split::LeaveOneOut,
        Some(&weights),
    )
    .unwrap();
    assert_eq!(stats.duplicates, 1);
    // Leave-one-out by time: user 1 trains on 11 (t2), validates on 10 (latest copy t3: 2 + 5),
    // tests on 12; user 2 trains on 10, validates on 11.
    let split = data.weights.unwrap();
    let item = |external: i64| data.item_ids.internal(external).unwrap();
    let user = |external: i64| data.user_ids.internal(external).unwrap() as usize;
    assert_eq!(data.train[user(1)], vec![item(11)]);
    assert_eq!(split.train[user(1)], vec![0.5]);
    assert_eq!(data.valid[user(1)], vec![item(10)]);
    assert_eq!(split.valid[user(1)], vec![7.0]);
    assert_eq!(split.train[user(2)], vec![3.0]);
    assert_eq!(split.valid[user(2)], vec![4.0]);
    // The ratings as weights; without [weights] the column is not kept.
    let from_rating = Weights {
        from: WeightSource::Rating,
        ..Weights::default()
    };
    let (rated, _) = prepare_weighted(
        &weighted_csv(path.clone()),
        &Preprocess::default(),
        &Split::LeaveOneOut,
        Some(&from_rating),
    )
    .unwrap();
    assert_eq!(rated.weights.unwrap().valid[user(1)], vec![9.0]); // 4 + 5
    let (plain, _) = prepare(
        &weighted_csv(path),
        &Preprocess::default(),
        &Split::LeaveOneOut,
    )
    .unwrap();
    assert!(plain.weights.is_none());
}

#[test]
fn negative_and_nan_weights_are_refused_with_their_line_or_row() {
    let dir = tempfile::tempdir().unwrap();
    let csv = |body: &str| {
        let path = write(
            dir.path(),
            "w.csv",
            &format!("user,item,rating,ts,plays\n{body}"),
        );
        load_err(weighted_csv(path)).replace(&*dir.path().join("w.csv").to_string_lossy(), "F")
    };
    assert_eq!(
        csv("1,10,4,1,2\n1,11,3,2,-1\n"),
        "F:3: weight `-1` is negative: weights (counts, quantities, spend) must be 0 or more"
    );
    assert_eq!(
        csv("1,10,4,1,NaN\n"),
        "F:2: weight `NaN` is not a finite number, 0 or more: NaN, infinities and values beyond ±3.4e38 (weights are 32-bit floats) are refused"
    );
    use polars::prelude::*;
    let file = dir.path().join("w.parquet");
    let mut df = df!(
        "user" => [1i64, 1, 2],
        "item" => [1i64, 2, 3],
        "plays" => [4.0f64, 1.0, -0.5]
    )
    .unwrap();
    ParquetWriter::new(fs::File::create(&file).unwrap())
        .finish(&mut df)
        .unwrap();
    let source = DataSource::Parquet {
        path: file.clone(),
        user: "user".into(),
        item: "item".into(),
        rating: None,
        timestamp: None,
        weight: Some("plays".into()),
        key_type: Default::default(),
    };
    let err = load_err(source).replace(&*file.to_string_lossy(), "F");
    assert!(
        err.contains("F: column `plays`, row 3: weight `-0.5` is negative"),
        "{err}"
    );
}

#[test]
fn weights_without_a_source_or_from_a_negative_rating_are_refused() {
    use ember_data::{WeightSource, Weights, prepare_weighted};
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "r.csv",
        "user,item,rating,ts\n1,10,4,1\n1,11,-2,2\n",
    );
    let unweighted = rated_csv(path.clone(), ",");
    let err = |weights: &Weights| {
        let e = prepare_weighted(
            &unweighted,
            &Preprocess::default(),
            &Split::LeaveOneOut,
            Some(weights),
        )
        .unwrap_err();
        chain(&e).replace(&*path.to_string_lossy(), "F")
    };
    assert_eq!(
        err(&Weights::default()),
        "F: [weights] needs weights: name the column with data.weight (a delimited, Parquet or PostgreSQL source), or set weights.from = \"rating\""
    );
    let from_rating = Weights {
        from: WeightSource::Rating,
        ..Weights::default()
    };
    assert_eq!(
        err(&from_rating),
        "interaction 2 (user 1, item 11) has weight -2: weights must be finite numbers, 0 or more"
    );
    let unrated = delimited(
        path.clone(),
        ",",
        true,
        Column::Name("user".into()),
        Column::Name("item".into()),
    );
    let e = prepare_weighted(
        &unrated,
        &Preprocess::default(),
        &Split::LeaveOneOut,
        Some(&from_rating),
    )
    .unwrap_err();
    assert_eq!(
        chain(&e).replace(&*path.to_string_lossy(), "F"),
        "F: weights.from = \"rating\" needs a rating column, and the data has none"
    );
    let bad_alpha = Weights {
        alpha: -1.0,
        ..from_rating.clone()
    };
    assert_eq!(
        err(&bad_alpha),
        "weights.alpha must be a finite number, 0 or more, got -1"
    );
    let bad_epsilon = Weights {
        epsilon: 0.0,
        ..from_rating
    };
    assert_eq!(
        err(&bad_epsilon),
        "weights.epsilon must be a positive finite number, got 0"
    );
}

#[test]
fn confidences_follow_their_formula_and_average_one() {
    use ember_data::{Confidence, Weights};
    let linear = Weights {
        alpha: 2.0,
        ..Weights::default()
    };
    assert_eq!(linear.confidence_of(3.0), 7.0); // 1 + 2·3
    let log = Weights {
        confidence: Confidence::Log,
        alpha: 2.0,
        epsilon: 0.5,
        ..Weights::default()
    };
    assert!((log.confidence_of(1.0) - (1.0 + 2.0 * 3f32.ln())).abs() < 1e-6); // 1 + 2 ln(1 + 1/0.5)
    // Raw 1 + 2w over weights 0, 1 | 2: 1, 3 | 5, mean 3.
    let scaled = linear.confidences(&[vec![0.0, 1.0], vec![2.0]]);
    let flat: Vec<f32> = scaled.concat();
    for (got, want) in flat.iter().zip([1.0 / 3.0, 1.0, 5.0 / 3.0]) {
        assert!((got - want).abs() < 1e-6, "{scaled:?}");
    }
    assert_eq!(scaled.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
}

/// `preprocess.drop_unseen_test_items` leaves out held-out items no training user has, with
/// their ratings: under leave-one-out, user 1's test item 99 and user 2's validation item 98
/// (nobody trains on them) go; the held-out items others train on stay.
#[test]
fn unseen_held_out_items_are_dropped_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = String::from("user,item,rating,ts\n");
    // Users 1–3 each rate items 1–4 (ts 1–4), then two more: user 1 2 then 99 (test), user 2
    // 98 (validation) then 3, user 3 1 then 2.
    for (u, tail) in [(1, [2, 99]), (2, [98, 3]), (3, [1, 2])] {
        for (t, i) in [1, 2, 3, 4].into_iter().chain(tail).enumerate() {
            rows.push_str(&format!("{u},{i},{}.0,{}\n", 1 + (u + i) % 5, t + 1));
        }
    }
    let src = rated_csv(write(dir.path(), "r.csv", &rows), ",");
    let keep = Preprocess {
        dedup: false,
        ..Preprocess::default()
    };
    let (kept, stats) = prepare(&src, &keep, &Split::LeaveOneOut).unwrap();
    assert_eq!(stats.unseen_held_out, 0);
    let drop = Preprocess {
        drop_unseen_test_items: true,
        ..keep
    };
    let (data, stats) = prepare(&src, &drop, &Split::LeaveOneOut).unwrap();
    assert_eq!(stats.unseen_held_out, 2);
    let item = |i: i64| data.item_ids.internal(i).unwrap();
    let user = |u: i64| data.user_ids.internal(u).unwrap() as usize;
    assert_eq!(kept.test[user(1)], [item(99)]);
    assert!(data.test[user(1)].is_empty() && data.valid[user(2)].is_empty());
    assert_eq!(data.valid[user(1)], [item(2)]);
    assert_eq!(data.test[user(2)], [item(3)]);
    let ratings = data.ratings.as_ref().unwrap();
    assert!(ratings.test[user(1)].is_empty() && ratings.valid[user(2)].is_empty());
    assert_eq!(
        ratings.test[user(2)],
        kept.ratings.as_ref().unwrap().test[user(2)]
    );
    assert_eq!(data.train, kept.train);
}

/// Interactions of customers `C-…` with products `SKU-…`, and a delimited attribute table.
fn shop(dir: &Path) -> ember_data::Dataset {
    let events = write(
        dir,
        "events.csv",
        "user,item\nC-1,SKU-1\nC-1,SKU-2\nC-2,SKU-2\nC-3,SKU-3\nC-3,SKU-1\n",
    );
    let mut source = named(events);
    if let DataSource::Delimited { key_type, .. } = &mut source {
        *key_type = KeyType::String;
    }
    let split = Split::Ratio {
        train: 1.0,
        valid: 0.0,
        test: 0.0,
        seed: 0,
    };
    prepare(&source, &Preprocess::default(), &split).unwrap().0
}

fn table(path: PathBuf, columns: &str) -> ember_data::AttributeTable {
    let text =
        format!("format = \"delimited\"\npath = {path:?}\nkey = \"id\"\ncolumns = {columns}\n");
    let value: serde_json::Value = toml_value(&text);
    serde_json::from_value(value).unwrap()
}

/// A small TOML table as JSON (the tests' only TOML: ember-data reads configs through serde).
fn toml_value(text: &str) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for line in text.lines() {
        let (key, value) = line.split_once(" = ").unwrap();
        let value = match value.strip_prefix('"') {
            Some(quoted) => serde_json::Value::String(quoted.trim_end_matches('"').into()),
            None => serde_json::from_str(value).unwrap(),
        };
        map.insert(key.into(), value);
    }
    serde_json::Value::Object(map)
}

/// A customer table with string keys: a key the interactions do not have is counted, a
/// customer without a row and an empty value go to the unknown bucket, and the encoders are
/// fitted on the matched rows (hand-computed vocabularies, mean, scale and features).
#[test]
fn attribute_tables_are_checked_counted_and_encoded() {
    use ember_data::Side;
    use ember_spec::ColumnEncoder;
    let dir = tempfile::tempdir().unwrap();
    let data = shop(dir.path());
    let customers = write(
        dir.path(),
        "customers.csv",
        "id,region,age,tags,label\nC-2,north,30,a|b,Bob\nC-1,south,50,,Ann\nC-9,east,99,c,Zed\n",
    );
    let columns = r#"[{"column": "region", "type": "categorical"}, {"column": "age", "type": "numeric"}, {"column": "tags", "type": "multi"}, {"column": "label", "type": "label"}]"#;
    let users = table(customers.clone(), columns);
    let loaded = users.load(Side::Users, &data.user_ids).unwrap();
    let c = &loaded.coverage;
    assert_eq!(
        (c.rows, c.matched, c.not_in_interactions, c.without_row),
        (3, 2, 1, 1)
    );
    assert_eq!(
        c.missing,
        [
            ("region".to_string(), 1),
            ("age".to_string(), 1),
            ("tags".to_string(), 2),
            ("label".to_string(), 1)
        ]
    );
    let schema = &loaded.side.schema;
    assert_eq!(
        schema.columns[0].encoder,
        ColumnEncoder::Categorical {
            vocabulary: vec!["north".into(), "south".into()]
        }
    );
    // C-1 50 and C-2 30: mean 40, population deviation 10 (C-9 is not a customer).
    assert_eq!(
        schema.columns[1].encoder,
        ColumnEncoder::Standard {
            mean: 40.0,
            scale: 10.0
        }
    );
    let user = |k: &str| {
        data.user_ids
            .internal_of_key(&ember_spec::Key::from(k))
            .unwrap() as usize
    };
    let display = loaded.side.display.as_ref().unwrap();
    assert_eq!(display[user("C-1")].as_deref(), Some("Ann"));
    assert_eq!(display[user("C-3")], None);
    let rows = loaded.side.features.as_ref().unwrap();
    // region (3 wide), age (2), tags (a, b: 3): C-2 = north, +1σ... (30 − 40)/10 = −1, a and b.
    let row = |k: &str| rows.row(user(k)).collect::<Vec<_>>();
    assert_eq!(row("C-2"), [(1, 1.0), (4, -1.0), (6, 0.5), (7, 0.5)]);
    assert_eq!(row("C-1"), [(2, 1.0), (4, 1.0), (5, 1.0)]);
    assert_eq!(row("C-3"), [(0, 1.0), (3, 1.0), (5, 1.0)]);
    assert!(matches!(loaded.input, ember_data::InputFile::File { .. }));

    // Bad tables: each names the file, the line and the column.
    let bad = |content: &str, columns: &str| {
        let path = write(dir.path(), "bad.csv", content);
        table(path, columns)
            .load(Side::Users, &data.user_ids)
            .unwrap_err()
            .to_string()
    };
    let region = r#"[{"column": "region", "type": "categorical"}]"#;
    let path = dir.path().join("bad.csv").display().to_string();
    assert_eq!(
        bad("id,region\nC-1,north\nC-1,south\n", region),
        format!("data.users: {path}:3: key `C-1` is given twice (first at line 2)")
    );
    assert_eq!(
        bad(
            "id,age\nC-1,old\n",
            r#"[{"column": "age", "type": "numeric"}]"#
        ),
        format!("{path}:2: column `age`: `old` is not a number")
    );
    assert_eq!(
        bad("id,place\nC-1,north\n", region),
        format!("data.users: {path}: no column `region`; it has id, place")
    );
    // A shop whose customers have integer keys refuses `C-1`.
    let numbered = write(dir.path(), "numbered.csv", "user,item\n1,10\n2,10\n");
    let all_train = Split::Ratio {
        train: 1.0,
        valid: 0.0,
        test: 0.0,
        seed: 0,
    };
    let (numbers, _) = prepare(&named(numbered), &Preprocess::default(), &all_train).unwrap();
    let refused = table(
        write(dir.path(), "bad.csv", "id,region\nC-1,north\n"),
        region,
    )
    .load(Side::Users, &numbers.user_ids)
    .unwrap_err()
    .to_string();
    assert_eq!(
        refused,
        format!(
            "data.users: {path}:2: key `C-1` is not an integer key: the interactions' users have \
             integer keys"
        )
    );
    let name = table(customers, r#"[{"column": "label", "type": "name"}]"#);
    assert_eq!(
        name.load(Side::Users, &data.user_ids)
            .unwrap_err()
            .to_string(),
        "data.users: column `label`: `name` is for items; a user's display text is a `label`"
    );
}

/// MovieLens-100K's own attribute files: `u.user` (age, gender, occupation) and `u.item`
/// (Latin-1 titles) cover every user and item (skipped when ../shared/datasets is absent).
#[test]
fn movielens_100k_attribute_files_cover_every_user_and_item() {
    use ember_data::Side;
    use ember_spec::ColumnEncoder;
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/ml-100k");
    if !shared.join("u.item").exists() {
        assert!(
            std::env::var_os("EMBER_REQUIRE_TEST_INPUTS").is_none(),
            "{} is missing",
            shared.display()
        );
        eprintln!("skipped: {} not found", shared.display());
        return;
    }
    let source = DataSource::Movielens100k {
        path: shared.join("u.data"),
    };
    let (data, _) = prepare(&source, &Preprocess::default(), &Split::LeaveOneOut).unwrap();
    let columns = |spec: &str| -> Vec<serde_json::Value> { serde_json::from_str(spec).unwrap() };
    let mut users = toml_value(&format!(
        "format = \"delimited\"\npath = {:?}\nseparator = \"|\"\nheader = false\nkey = 0",
        shared.join("u.user")
    ));
    users["columns"] = columns(
        r#"[{"column": 1, "type": "numeric", "scale": "quantiles", "buckets": 4, "name": "age"},
            {"column": 2, "type": "categorical", "name": "gender"},
            {"column": 3, "type": "categorical", "name": "occupation"}]"#,
    )
    .into();
    let users: ember_data::AttributeTable = serde_json::from_value(users).unwrap();
    let loaded = users.load(Side::Users, &data.user_ids).unwrap();
    assert_eq!((loaded.coverage.rows, loaded.coverage.matched), (943, 943));
    let widths: Vec<usize> = loaded
        .side
        .schema
        .columns
        .iter()
        .map(|c| c.encoder.width())
        .collect();
    // Age: 3 edges (5 features with unknown), gender 2 + 1, occupation 21 + 1.
    assert_eq!(widths, [5, 3, 22]);
    let ColumnEncoder::Quantiles { edges } = &loaded.side.schema.columns[0].encoder else {
        panic!("quantiles");
    };
    // Each of the four age buckets holds about a quarter of the users.
    let rows = loaded.side.features.as_ref().unwrap();
    for bucket in 1..=4u32 {
        let n = (0..943)
            .filter(|&u| rows.row(u).any(|(f, _)| f == bucket))
            .count();
        assert!(
            (180..=290).contains(&n),
            "bucket {bucket} of {edges:?}: {n}"
        );
    }
    let mut items = toml_value(&format!(
        "format = \"delimited\"\npath = {:?}\nseparator = \"|\"\nheader = false\nencoding = \"latin1\"\nkey = 0",
        shared.join("u.item")
    ));
    items["columns"] = columns(r#"[{"column": 1, "type": "name", "name": "title"}]"#).into();
    let items: ember_data::AttributeTable = serde_json::from_value(items).unwrap();
    let loaded = items.load(Side::Items, &data.item_ids).unwrap();
    assert_eq!(
        (loaded.coverage.rows, loaded.coverage.without_row),
        (1682, 0)
    );
    let names = loaded.side.display.unwrap();
    let item = |id: i64| data.item_ids.internal(id).unwrap() as usize;
    assert_eq!(names[item(1)].as_deref(), Some("Toy Story (1995)"));
    // Latin-1: `Misérables, Les (1995)` (item 1658's title is in the file's own bytes).
    assert!(names.iter().flatten().any(|n| n.contains('é')));
}
