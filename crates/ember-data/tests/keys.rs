//! Keys as the source has them: string keys from text and Parquet, declared key types, and
//! the id maps that keep them.

use ember_data::{Column, DataSource, Interactions, KeyDictionary, Preprocess, Split, prepare};
use ember_spec::{Key, KeyKind, KeyType};
use std::fs;
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, content).unwrap();
    path
}

fn csv(path: PathBuf, key_type: KeyType) -> DataSource {
    DataSource::Delimited {
        path,
        separator: ",".into(),
        header: true,
        user: Column::Name("user".into()),
        item: Column::Name("item".into()),
        rating: None,
        timestamp: None,
        max_line_bytes: None,
        key_type,
        encoding: None,
        weight: None,
    }
}

fn parquet(path: &Path, df: &mut polars::prelude::DataFrame, key_type: KeyType) -> DataSource {
    use polars::prelude::*;
    ParquetWriter::new(fs::File::create(path).unwrap())
        .finish(df)
        .unwrap();
    DataSource::Parquet {
        path: path.to_owned(),
        user: "user".into(),
        item: "item".into(),
        rating: None,
        timestamp: None,
        key_type,
        weight: None,
    }
}

/// Each interaction's keys as text.
fn keys(data: &Interactions) -> Vec<(String, String)> {
    let key = |codes: &[i64], keys: &KeyDictionary, k: usize| keys.key(codes[k]).to_string();
    (0..data.len())
        .map(|k| {
            (
                key(&data.users, &data.user_keys, k),
                key(&data.items, &data.item_keys, k),
            )
        })
        .collect()
}

fn pairs(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    rows.iter()
        .map(|(u, i)| (u.to_string(), i.to_string()))
        .collect()
}

fn load_err(source: DataSource) -> String {
    source.load().unwrap_err().to_string()
}

#[test]
fn customer_and_product_codes_are_read_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "a.csv",
        "user,item\nC-000123,SKU-00042\nC-9,SHAMPOO-250ML\nC-000123,SHAMPOO-250ML\n",
    );
    let data = csv(path, KeyType::Auto).load().unwrap().interactions;
    assert_eq!(
        keys(&data),
        pairs(&[
            ("C-000123", "SKU-00042"),
            ("C-9", "SHAMPOO-250ML"),
            ("C-000123", "SHAMPOO-250ML"),
        ])
    );
    assert_eq!(
        (data.user_keys.kind(), data.item_keys.kind()),
        (KeyKind::String, KeyKind::String)
    );
}

#[test]
fn integer_files_keep_integer_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", "user,item\n196,242\n7,3.0\n");
    let data = csv(path, KeyType::Auto).load().unwrap().interactions;
    assert_eq!((data.users, data.items), (vec![196, 7], vec![242, 3]));
    assert_eq!(data.user_keys, KeyDictionary::Integers);
}

#[test]
fn zero_padded_codes_never_become_numbers() {
    let dir = tempfile::tempdir().unwrap();
    // Material numbers: `000123` and `123` are two products.
    let path = write(dir.path(), "a.csv", "user,item\n1,000123\n2,123\n1,123\n");
    let data = csv(path.clone(), KeyType::Auto)
        .load()
        .unwrap()
        .interactions;
    assert_eq!(
        keys(&data),
        pairs(&[("1", "000123"), ("2", "123"), ("1", "123")])
    );
    assert_eq!(data.user_keys.kind(), KeyKind::Integer);
    assert_eq!(data.item_keys.kind(), KeyKind::String);
    // Declared integers, they are one number.
    let data = csv(path, KeyType::Integer).load().unwrap().interactions;
    assert_eq!(data.items, vec![123, 123, 123]);
}

#[test]
fn declared_string_keys_order_by_bytes_in_the_id_maps() {
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (0..4)
        .flat_map(|u| ["7", "10", "9"].iter().map(move |i| format!("{u},{i}\n")))
        .collect();
    let path = write(dir.path(), "a.csv", &format!("user,item\n{rows}"));
    let (dataset, _) = prepare(
        &csv(path, KeyType::String),
        &Preprocess::default(),
        &Split::LeaveOneOut,
    )
    .unwrap();
    let items: Vec<Key> = (0..3).map(|i| dataset.item_ids.key(i)).collect();
    assert_eq!(items, [Key::from("10"), Key::from("7"), Key::from("9")]);
    assert_eq!(dataset.item_ids.internal_of_key(&Key::from("9")), Some(2));
    assert_eq!(dataset.item_ids.internal_of_key(&Key::Integer(9)), None);
    assert_eq!(dataset.user_ids.key(3), Key::from("3"));
}

#[test]
fn the_same_keys_in_another_order_get_the_same_ids() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        "C-2,P-1", "C-1,P-2", "C-3,P-3", "C-2,P-3", "C-1,P-1", "C-3,P-2", "C-1,P-3", "C-2,P-2",
        "C-3,P-1", "C-1,P-4",
    ];
    let split = |name: &str, rows: &[&str]| {
        let path = write(
            dir.path(),
            name,
            &format!("user,item\n{}\n", rows.join("\n")),
        );
        let (d, _) = prepare(
            &csv(path, KeyType::Auto),
            &Preprocess::default(),
            &Split::LeaveOneOut,
        )
        .unwrap();
        (0..d.num_users() as u32)
            .map(|u| (d.user_ids.key(u), d.train[u as usize].len()))
            .collect::<Vec<_>>()
    };
    let mut reversed = rows;
    reversed.reverse();
    let forward = split("a.csv", &rows);
    assert_eq!(forward[0].0, Key::from("C-1"));
    assert_eq!(forward, split("b.csv", &reversed));
}

#[test]
fn bad_keys_are_named_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", "user,item\nC-1,SKU-1\nC-2,\n");
    let err = load_err(csv(path.clone(), KeyType::Auto));
    assert!(
        err.ends_with("a.csv:3: item is empty: every interaction needs its item key"),
        "{err}"
    );
    let path = write(dir.path(), "b.csv", "user,item\n1,2\n2,2.5\n");
    let err = load_err(csv(path, KeyType::Auto));
    assert!(
        err.ends_with(
            "b.csv:3: item `2.5` is not an integer id: it has a fractional part; if the keys \
             are codes rather than numbers, set key_type = \"string\""
        ),
        "{err}"
    );
    let path = write(dir.path(), "c.csv", "user,item\n1,2\nC-1,2\n");
    let err = load_err(csv(path, KeyType::Integer));
    assert!(
        err.ends_with(
            "c.csv:3: user `C-1` is not an integer id; the keys are declared integers \
             (key_type = \"integer\"): set key_type = \"string\" for keys such as `C-000123`"
        ),
        "{err}"
    );
}

#[test]
fn parquet_keys_keep_the_column_type() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k.parquet");
    // String users (`000123` stays), integer items.
    let mut df = df!("user" => ["000123", "C-7", "000123"], "item" => [5i64, 6, 6]).unwrap();
    let data = parquet(&file, &mut df, KeyType::Auto)
        .load()
        .unwrap()
        .interactions;
    assert_eq!(
        keys(&data),
        pairs(&[("000123", "5"), ("C-7", "6"), ("000123", "6")])
    );
    assert_eq!(data.item_keys, KeyDictionary::Integers);
    // Declared string, integer items are their decimal strings.
    let data = parquet(&file, &mut df, KeyType::String)
        .load()
        .unwrap()
        .interactions;
    assert_eq!(data.item_keys.kind(), KeyKind::String);
    // Declared integer, string users must be integers.
    let err =
        load_err(parquet(&file, &mut df, KeyType::Integer)).replace(&*file.to_string_lossy(), "F");
    assert_eq!(
        err,
        "F: column `user`, row 2: user `C-7` is not an integer id; the keys are declared \
         integers (key_type = \"integer\"): set key_type = \"string\" for keys such as \
         `C-000123`"
    );
}

#[test]
fn parquet_categorical_columns_are_string_keys() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.parquet");
    let users = Series::new("user".into(), ["C-2", "C-1", "C-2"])
        .cast(&DataType::from_categories(Categories::global()))
        .unwrap();
    let items = Series::new("item".into(), ["SKU-1", "SKU-1", "SKU-2"]);
    let mut df = DataFrame::new_infer_height(vec![users.into(), items.into()]).unwrap();
    let data = parquet(&file, &mut df, KeyType::Auto)
        .load()
        .unwrap()
        .interactions;
    assert_eq!(
        keys(&data),
        pairs(&[("C-2", "SKU-1"), ("C-1", "SKU-1"), ("C-2", "SKU-2")])
    );
}
