//! A family is declared once (ember-spec's `model_families!`, and one `ModelFamily` impl in its
//! own file): every registry built from the declaration knows the same kinds. Listed four
//! ways, the sets must agree: the exported specs' kinds, the training registry's kinds, the
//! kinds a `[model]` table names (each with valid defaults, building a model that exports
//! under that kind) and the bench presets. Inference registers every `ModelSpec` variant by an
//! exhaustive match (ember-infer's `families::registration`), and ember-train's export parity
//! test holds its list to [`MODEL_KINDS`]; configs/ is held to it by ember-train's
//! `configs.rs`.

use std::collections::BTreeSet;

use burn::prelude::*;
use ember_models::{MODEL_KINDS, ModelConfig, ModelInit};
use ember_spec::ModelSpec;

/// Six users' items among eight, so that every family can be built and export.
fn train_lists() -> Vec<Vec<u32>> {
    vec![
        vec![0, 1, 2],
        vec![1, 2, 3],
        vec![4, 5],
        vec![5, 6, 7],
        vec![0, 7],
        vec![2, 6, 3],
    ]
}

/// The model a `[model]` table naming only `kind` builds, exported: its spec's kind.
fn exported_kind(config: &ModelConfig) -> &'static str {
    let train = train_lists();
    let model = config.init(&ModelInit::new(8, &train), &Device::flex());
    model.export().spec.kind()
}

#[test]
fn every_registry_lists_the_same_kinds() {
    let specs: BTreeSet<&str> = ModelSpec::KINDS.iter().copied().collect();
    assert_eq!(
        specs.len(),
        ModelSpec::KINDS.len(),
        "a kind is written twice"
    );
    let trained: BTreeSet<&str> = MODEL_KINDS.iter().copied().collect();
    let (mut configured, mut exported, mut benched) = Default::default();
    for kind in ModelSpec::KINDS {
        let config: ModelConfig = serde_json::from_value(serde_json::json!({ "kind": kind }))
            .unwrap_or_else(|e| panic!("`kind = \"{kind}\"` alone: {e}"));
        config
            .validate()
            .unwrap_or_else(|e| panic!("{kind}'s defaults: {e}"));
        BTreeSet::insert(&mut configured, config.name());
        BTreeSet::insert(&mut exported, exported_kind(&config));
        if let Some(preset) = ModelConfig::bench_preset(kind) {
            BTreeSet::insert(&mut benched, preset.name());
        }
    }
    assert_eq!(trained, specs, "training registry vs ModelSpec");
    assert_eq!(configured, specs, "[model] kinds vs ModelSpec");
    assert_eq!(exported, specs, "exported spec kinds vs ModelSpec");
    assert_eq!(benched, specs, "bench presets vs ModelSpec");
}

#[test]
fn an_unknown_kind_has_no_config_and_no_preset() {
    let err = serde_json::from_value::<ModelConfig>(serde_json::json!({ "kind": "knn" }))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("unknown variant `knn`, expected one of `mf`"),
        "{err}"
    );
    assert!(err.contains("`item_knn`"), "{err}");
    assert_eq!(ModelConfig::bench_preset("knn"), None);
}
