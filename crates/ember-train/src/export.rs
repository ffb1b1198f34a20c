//! `ember export`: a finished run's model written in ember-infer's format.

use ember_infer::{FORMAT_VERSION, Manifest, ModelSpec, Precision, TensorF32, write_model};
use ember_models::ModelConfig;
use std::path::Path;

use crate::{TrainError, files, load_run};

/// A stable hash of a data set's splits (FNV-1a over sizes and every (user, item) pair with
/// external ids), so that a model can be matched to the data it was trained on.
pub fn dataset_fingerprint(data: &ember_data::Dataset) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |x: i64| {
        for byte in x.to_le_bytes() {
            hash ^= byte as u64;
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for split in [&data.train, &data.valid, &data.test] {
        feed(split.len() as i64);
        for (u, items) in split.iter().enumerate() {
            for &i in items {
                feed(data.user_ids.external(u as u32));
                feed(data.item_ids.external(i));
            }
        }
    }
    format!("fnv1a64:{hash:016x}")
}

/// Exports the model of run `run_dir` to the new directory `out` at `precision`.
pub fn export_run(
    run_dir: &Path,
    out: &Path,
    precision: Precision,
) -> Result<Manifest, TrainError> {
    let run = load_run(run_dir, "flex")?;
    let model = match &run.config.model {
        ModelConfig::Mf(c) => ModelSpec::Mf { factors: c.factors },
        ModelConfig::Gmf(c) => ModelSpec::Gmf { factors: c.factors },
        ModelConfig::Mlp(c) => ModelSpec::Mlp {
            layers: c.layers.clone(),
        },
        ModelConfig::NeuMf(c) => ModelSpec::NeuMf {
            factors: c.factors,
            layers: c.layers.clone(),
        },
    };
    let metrics_path = run_dir.join(files::METRICS);
    let metrics = std::fs::read_to_string(&metrics_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        model,
        precision,
        user_ids: (0..run.data.num_users() as u32)
            .map(|u| run.data.user_ids.external(u))
            .collect(),
        item_ids: (0..run.data.num_items() as u32)
            .map(|i| run.data.item_ids.external(i))
            .collect(),
        dataset_fingerprint: dataset_fingerprint(&run.data),
        metrics,
    };
    let tensors: Vec<TensorF32> = run
        .model
        .named_tensors()
        .into_iter()
        .map(|(name, shape, data)| TensorF32 { name, shape, data })
        .collect();
    write_model(out, &manifest, &tensors).map_err(|e| TrainError::Export(e.to_string()))?;
    Ok(manifest)
}
