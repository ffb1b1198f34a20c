//! Every config shipped in `configs/` parses and passes validation, and every model kind has
//! one: a misspelt key or a stale option in a shipped config is a bug.

use ember_train::RunConfig;

mod common;

#[test]
fn shipped_configs_are_valid_and_cover_every_model() {
    let dir = common::repo().join("configs");
    let mut kinds = std::collections::BTreeSet::new();
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config = RunConfig::from_file(&path)
                .unwrap_or_else(|e| panic!("{}: {}", path.display(), common::chain(&e)));
            kinds.insert(config.model.name());
            count += 1;
        }
    }
    assert!(count >= 10, "{count} configs in {}", dir.display());
    for kind in ember_models::MODEL_KINDS {
        assert!(
            kinds.contains(kind),
            "no config in configs/ trains `{kind}`"
        );
    }
}
