//! Fuzzes the Parquet reader: the input is the file, read with the columns `user`, `item`,
//! `rating` and `timestamp`, then with `user` and `item` alone. Reading must give
//! interactions or an error, never panic; what is read is then cleaned and split.
#![no_main]

use ember_data::{DataSource, Loaded, Preprocess, Split};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("ember-data-fuzz-{}.parquet", std::process::id()));
    std::fs::write(&path, data).expect("scratch file");
    for full in [true, false] {
        let source = DataSource::Parquet {
            path: path.clone(),
            user: "user".into(),
            item: "item".into(),
            rating: full.then(|| "rating".into()),
            timestamp: full.then(|| "timestamp".into()),
            weight: None,
            key_type: Default::default(),
        };
        let Ok(Loaded {
            mut interactions, ..
        }) = source.load()
        else {
            continue;
        };
        assert!(!interactions.is_empty(), "the reader returned no interactions");
        let preprocess = Preprocess {
            implicit_threshold: interactions.ratings.as_ref().map(|_| 3.0),
            ..Default::default()
        };
        if preprocess.apply(&mut interactions).is_ok() && !interactions.is_empty() {
            let _ = Split::LeaveOneOut.apply(&interactions, None);
        }
    }
});
