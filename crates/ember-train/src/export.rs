//! `ember export`: a finished run's model written in ember-infer's format.

use ember_infer::{
    ExportedModel, FORMAT_VERSION, Manifest, ModelData, ModelSpec, Precision, TensorF32,
    write_model_with,
};
use ember_models::ModelConfig;
use std::path::Path;

use crate::evaluate::{
    EvaluationPlan, HeldOut, ModelScorer, RatingPredictor, Scorer, evaluate_ratings,
};
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
        ModelConfig::MultDae(c) => ModelSpec::MultDae {
            hidden: c.hidden.clone(),
        },
        ModelConfig::MultVae(c) => ModelSpec::MultVae {
            hidden: c.hidden.clone(),
        },
        ModelConfig::Cdae(c) => ModelSpec::Cdae { hidden: c.hidden },
        ModelConfig::AutoRec(c) => ModelSpec::AutoRec {
            hidden: c.hidden,
            item_based: c.item_based,
        },
        ModelConfig::SasRec(c) => ModelSpec::SasRec {
            hidden: c.hidden,
            blocks: c.blocks,
            heads: c.heads,
            max_len: c.max_len,
            layer_norm_epsilon: ember_models::sasrec::LAYER_NORM_EPSILON,
        },
        ModelConfig::Bert4Rec(c) => ModelSpec::Bert4Rec {
            hidden: c.hidden,
            blocks: c.blocks,
            heads: c.heads,
            max_len: c.max_len,
            layer_norm_epsilon: ember_models::bert4rec::LAYER_NORM_EPSILON,
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
    // History-based models score a user from their training items, AutoRec from the training
    // ratings: those travel along.
    let rating_rows = match &manifest.model {
        ModelSpec::AutoRec { item_based, .. } => {
            Some(crate::evaluate::rating_rows(&run.data, *item_based))
        }
        _ => None,
    };
    // Sequence models continue each user's whole known sequence: training, then validation
    // items (the latest; empty after a refit, which trained on them).
    let sequences: Option<Vec<Vec<u32>>> = manifest.model.reads_sequences().then(|| {
        run.data
            .train
            .iter()
            .zip(&run.data.valid)
            .map(|(train, valid)| train.iter().chain(valid).copied().collect())
            .collect()
    });
    let data = match (&rating_rows, &sequences) {
        (Some(rows), _) => ModelData::Ratings(rows),
        (None, Some(sequences)) => ModelData::Histories(sequences),
        (None, None) if manifest.model.reads_histories() => ModelData::Histories(&run.data.train),
        (None, None) => ModelData::None,
    };
    write_model_with(out, &manifest, &tensors, data)
        .map_err(|e| TrainError::Export(e.to_string()))?;
    Ok(manifest)
}

/// ember-infer's model as a [`Scorer`], to evaluate an exported model with the training side's
/// protocols.
pub struct ExportedScorer<'a>(pub &'a ExportedModel);

impl Scorer for ExportedScorer<'_> {
    fn score_pairs(&self, users: &[u32], items: &[u32]) -> Vec<f32> {
        let pairs: Vec<(u32, u32)> = users.iter().copied().zip(items.iter().copied()).collect();
        self.0.score_internal_pairs(&pairs)
    }

    fn score_all(&self, users: &[u32]) -> Vec<f32> {
        users
            .iter()
            .flat_map(|&u| self.0.item_scores_internal(u))
            .collect()
    }
}

/// How an export scores against the model it came from, on the same held-out data.
#[derive(Debug, Clone)]
pub struct ExportCheck {
    /// The split and protocol compared on (validation; test for a refit run, whose validation
    /// data was trained on, and for sequence models, whose export reads the validation items).
    pub label: String,
    /// `(metric, training side, exported)`, in the report's order.
    pub metrics: Vec<(String, f64, f64)>,
    /// Size of `model.safetensors` in bytes.
    pub bytes: u64,
}

/// Evaluates the export in `out` and the run's own model in `run_dir` on the run's validation
/// data (its test data for a refit run or a sequence model) under the run's protocol.
pub fn check_export(run_dir: &Path, out: &Path) -> Result<ExportCheck, TrainError> {
    let run = load_run(run_dir, "flex")?;
    let exported = ExportedModel::load(out)
        .map_err(|e| TrainError::Export(format!("{}: {e}", out.display())))?;
    let plan = EvaluationPlan::new(&run.data, &run.config.eval.protocol, run.config.seed).map_err(
        |message| TrainError::Config {
            path: run_dir.join(files::CONFIG),
            message,
        },
    )?;
    // A sequence model's export holds each user's items up to the test item (the validation
    // items included), so it is compared where it reads exactly that: on test.
    let which =
        if run.data.valid.iter().any(|v| !v.is_empty()) && !run.config.model.reads_sequences() {
            HeldOut::Validation
        } else {
            HeldOut::Test
        };
    let (ks, batch_users) = (&run.config.eval.ks, run.config.eval.batch_users);
    let device = crate::device::device("flex")?;
    let (trained, export) = if exported.manifest().model.reads_ratings() {
        // Rating models: RMSE and MAE of the predicted ratings.
        let predictor = RatingPredictor::new(&run.model, &run.data, &device);
        let from_export = |pairs: &[(u32, u32)]| exported.score_internal_pairs(pairs);
        (
            evaluate_ratings(&|p| predictor.predict(p), &run.data, which),
            evaluate_ratings(&from_export, &run.data, which),
        )
    } else {
        (
            plan.evaluate(
                &ModelScorer::new(&run.model, &run.data, &device, which),
                &run.data,
                which,
                ks,
                batch_users,
            ),
            plan.evaluate(
                &ExportedScorer(&exported),
                &run.data,
                which,
                ks,
                batch_users,
            ),
        )
    };
    let metrics = trained
        .metrics
        .iter()
        .filter_map(|(name, value)| Some((name.clone(), *value, export.get(name)?)))
        .collect();
    let split = match which {
        HeldOut::Validation => "validation",
        HeldOut::Test if run.config.model.reads_sequences() => {
            "test (sequence model: its export reads the validation items)"
        }
        HeldOut::Test => "test (refit run: validation was trained on)",
    };
    let weights = out.join("model.safetensors");
    let bytes = std::fs::metadata(&weights)
        .map_err(|e| TrainError::Export(format!("{}: {e}", weights.display())))?
        .len();
    Ok(ExportCheck {
        label: if exported.manifest().model.reads_ratings() {
            format!("{split}, {}", trained.protocol)
        } else {
            format!("{split}, {}", plan.label(which))
        },
        metrics,
        bytes,
    })
}
