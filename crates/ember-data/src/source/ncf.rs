//! The NCF paper's files: `<prefix>.train.rating`, `.test.rating` and the optional
//! `.test.negative` (each test user's fixed negatives).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use ember_spec::lines::LineLimit;

use super::Loaded;
use super::delimited::{TableSpec, read_delimited};
use crate::split::FixedTest;
use crate::text::{numbered_lines, parse_id, read_text, shown};
use crate::{DataError, Result, TimeUnit};

/// The NCF paper's three files.
pub(super) fn read_ncf(prefix: &Path, limit: LineLimit) -> Result<Loaded> {
    let with_suffix = |suffix: &str| {
        let mut p = prefix.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    let interactions = read_delimited(
        &with_suffix(".train.rating"),
        "\t",
        false,
        &TableSpec::FOUR_COLUMNS,
        (limit, None),
    )?;
    let test_rows = read_delimited(
        &with_suffix(".test.rating"),
        "\t",
        false,
        &TableSpec::FOUR_COLUMNS,
        (limit, None),
    )?;
    let test: Vec<(i64, i64)> = test_rows
        .users
        .iter()
        .copied()
        .zip(test_rows.items.iter().copied())
        .collect();
    let test_timestamps = test_rows.timestamps;
    let negatives_path = with_suffix(".test.negative");
    let negatives = if negatives_path.exists() {
        let mut known: HashSet<i64> = interactions.users.iter().copied().collect();
        known.extend(test_rows.users.iter().copied());
        Some(read_ncf_negatives(&negatives_path, &known, limit)?)
    } else {
        None
    };
    Ok(Loaded {
        interactions,
        fixed: Some(FixedTest {
            test,
            test_timestamps,
            negatives,
        }),
        time_unit: Some(TimeUnit::Seconds),
        query_rows: None,
    })
}

/// `(user,item)\tneg1\tneg2…` lines, one per user of `known` (the users of the training and
/// test files). A negative equal to the held-out item (an upstream quirk of the ML-1M file) is
/// dropped: the same item cannot be both. Negatives may name items no file has an interaction
/// with: they are items of the catalogue nobody rated, and join the item ids.
fn read_ncf_negatives(
    path: &Path,
    known: &HashSet<i64>,
    limit: LineLimit,
) -> Result<Vec<(i64, Vec<i64>)>> {
    let text = read_text(path, limit)?;
    let mut out = Vec::new();
    let mut lines: HashMap<i64, usize> = HashMap::new();
    for (line, content) in numbered_lines(&text) {
        let f: Vec<&str> = content.split('\t').collect();
        let pair = f[0].trim();
        let inner = pair.strip_prefix('(').and_then(|p| p.strip_suffix(')'));
        let Some((user, item)) = inner.and_then(|p| p.split_once(',')) else {
            return Err(DataError::Parse {
                path: path.to_owned(),
                line,
                message: format!(
                    "expected `(user,item)` as the first field, found `{}`",
                    shown(pair)
                ),
            });
        };
        let user = parse_id(path, line, "user", user)?;
        let item = parse_id(path, line, "item", item)?;
        let problem = if !known.contains(&user) {
            Some(format!(
                "the negatives file names user {user}, who has no training or test interaction"
            ))
        } else {
            lines.insert(user, line).map(|first| {
                format!("the negatives file lists user {user} twice (first at line {first})")
            })
        };
        if let Some(message) = problem {
            return Err(DataError::Parse {
                path: path.to_owned(),
                line,
                message,
            });
        }
        let mut negatives = Vec::with_capacity(f.len() - 1);
        for field in f[1..].iter().filter(|s| !s.trim().is_empty()) {
            let n = parse_id(path, line, "negative item", field)?;
            if n != item {
                negatives.push(n);
            }
        }
        out.push((user, negatives));
    }
    if out.is_empty() {
        return Err(DataError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(out)
}
