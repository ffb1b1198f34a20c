//! Fuzzes the text readers (delimited files and the preset text formats). The first byte picks
//! the format and its settings, the rest is the file (for `ncf`, the three files separated by
//! `#`). Reading must give interactions or an error, never panic; what is read is then
//! cleaned and split as `ember_data::prepare` does.
#![no_main]

use ember_data::{Column, DataSource, Loaded, Preprocess, Split};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;

/// A scratch file of this process (libFuzzer runs one input at a time).
fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ember-data-fuzz-{}{name}", std::process::id()))
}

const SEPARATORS: [&str; 6] = [",", "\t", "::", " ", ";", "|"];

fn source(mode: u8, body: &[u8]) -> DataSource {
    let path = scratch(".txt");
    std::fs::write(&path, body).expect("scratch file");
    match mode % 8 {
        3 => DataSource::Movielens100k { path },
        4 => DataSource::Movielens1m { path },
        5 => DataSource::Sasrec { path },
        6 => DataSource::Sequences { path },
        7 => {
            let prefix = scratch("");
            let mut parts = body.split(|&b| b == b'#');
            for suffix in [".train.rating", ".test.rating", ".test.negative"] {
                let mut file = prefix.as_os_str().to_owned();
                file.push(suffix);
                match parts.next() {
                    Some(part) => std::fs::write(&file, part).expect("scratch file"),
                    None => {
                        let _ = std::fs::remove_file(&file);
                    }
                }
            }
            DataSource::Ncf { prefix }
        }
        _ => {
            let separator = SEPARATORS[usize::from(mode >> 3) % SEPARATORS.len()];
            let header = mode & 0x40 != 0;
            let column = |index: usize, name: &str| {
                if header {
                    Column::Name(name.into())
                } else {
                    Column::Index(index)
                }
            };
            let full = mode & 0x80 != 0;
            DataSource::Delimited {
                path,
                separator: separator.into(),
                header,
                user: column(0, "user"),
                item: column(1, "item"),
                rating: full.then(|| column(2, "rating")),
                timestamp: full.then(|| column(3, "timestamp")),
                weight: None,
                max_line_bytes: None,
                encoding: None,
                key_type: Default::default(),
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let Ok(Loaded {
        mut interactions,
        fixed,
        ..
    }) = source(mode, body).load()
    else {
        return;
    };
    assert!(
        !interactions.is_empty(),
        "a reader returned no interactions"
    );
    let (preprocess, split) = match fixed {
        Some(_) => (Preprocess::default(), Split::Fixed),
        None => (
            Preprocess {
                implicit_threshold: interactions.ratings.as_ref().map(|_| 3.0),
                min_user_interactions: 2,
                min_item_interactions: 2,
                ..Default::default()
            },
            Split::LeaveOneOut,
        ),
    };
    if preprocess.apply(&mut interactions).is_ok() && !interactions.is_empty() {
        let _ = split.apply(&interactions, fixed.as_ref());
    }
});
