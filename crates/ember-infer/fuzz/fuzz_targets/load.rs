//! Fuzzes the exported-model loader: the input is a 4-byte little-endian manifest length, the
//! manifest bytes, then the safetensors bytes. Loading must return a model or an error, never
//! panic; a loaded model must answer queries for its own ids.
//!
//! The input is loaded twice: as it is (the checksums refuse almost every mutation, which
//! tests that path), and with a manifest that parses given the checksums of what the input
//! holds, so that mutations reach the checks behind the checksums (shapes, values, ids).
#![no_main]

use ember_infer::{ExportedModel, Manifest};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fn load(manifest: &[u8], weights: &[u8]) -> Option<ExportedModel> {
    ExportedModel::from_bytes(
        manifest,
        weights,
        Path::new("manifest.json"),
        Path::new("model.safetensors"),
    )
    .ok()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let n = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let rest = &data[4..];
    let (manifest, weights) = rest.split_at(n.min(rest.len()));
    let _ = load(manifest, weights);
    let Ok(parsed) = serde_json::from_slice::<Manifest>(manifest) else {
        return;
    };
    let sealed = serde_json::to_vec(&parsed.with_checksums(weights)).expect("serialises");
    if let Some(model) = load(&sealed, weights) {
        let user = model.user_ids()[0];
        let item = model.item_ids()[0];
        let _ = model.recommend(user, 3, &[item]);
        let _ = model.audience(item, 3);
        let _ = model.score(&[(user, item)]);
        let _ = model.recommend_history(&[item, item.wrapping_add(1)], 3, &[item]);
        let _ = model.recommend_many(&[(user, &[item][..]), (user.wrapping_add(1), &[][..])], 2);
        let explain = ember_infer::Options { explain: 2, ..Default::default() };
        let _ = model.recommend_for(user, 3, &explain);
        let _ = model.audience_for(item, 3, &explain);
        let _ = model.recommend_history_for(&[item], 3, &explain);
        let _ = model.user_vector(user);
        let _ = model.known_items(user);
    }
});
