//! `ember export`: a finished run's model written in ember-infer's format.

use ember_infer::{
    ExportedModel, Keys, KnownItems, Manifest, ModelData, Precision, TensorF32, write_model_known,
};
use ember_models::Input;
use ember_spec::{Key, KeyKind};
use std::path::Path;

use crate::batches::HeldOut;
use crate::batches::{Readers, rating_rows};
use crate::evaluate::{EvaluationPlan, Scorer, evaluate_model, evaluate_ratings};
use crate::{Backend, TrainError, files, load_run};

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
    // Integer keys feed their value, as before keys could be strings; a string key its
    // length and bytes, so that two data sets with the same shape but other keys differ.
    let key = |ids: &ember_data::IdMap, internal: u32| match ids.key(internal) {
        Key::Integer(key) => vec![key],
        Key::String(key) => std::iter::once(key.len() as i64)
            .chain(key.bytes().map(i64::from))
            .collect(),
    };
    for split in [&data.train, &data.valid, &data.test] {
        feed(split.len() as i64);
        for (u, items) in split.iter().enumerate() {
            for &i in items {
                key(&data.user_ids, u as u32)
                    .into_iter()
                    .for_each(&mut feed);
                key(&data.item_ids, i).into_iter().for_each(&mut feed);
            }
        }
    }
    format!("fnv1a64:{hash:016x}")
}

/// The keys of an id map as an export lists them, in internal order.
pub fn export_keys(ids: &ember_data::IdMap) -> Keys {
    let internal = 0..ids.len() as u32;
    match ids.key_kind() {
        KeyKind::Integer => Keys::Integers(internal.map(|k| ids.external(k)).collect()),
        KeyKind::String => Keys::Strings(internal.map(|k| ids.key(k).to_string()).collect()),
    }
}

/// The identity of a finished run: SHA-256 over its resolved config (`config.toml`), its
/// inputs' fingerprints (`inputs.json`, when the run has one) and its weights (`model.bpk`),
/// each preceded by its length. An export records it, and `ember campaign --run` and `ember
/// report` compare it, so that one run's model is never scored against another run's data nor
/// reported beside another model's artefacts.
pub fn run_fingerprint(run_dir: &Path) -> Result<String, TrainError> {
    let mut bytes = Vec::new();
    for file in [files::CONFIG, files::INPUTS, files::WEIGHTS] {
        let path = run_dir.join(file);
        let content = match std::fs::read(&path) {
            Ok(content) => content,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && file == files::INPUTS => {
                Vec::new()
            }
            Err(e) => return Err(TrainError::io(&path)(e)),
        };
        bytes.extend((content.len() as u64).to_le_bytes());
        bytes.extend(content);
    }
    Ok(ember_infer::sha256(&bytes))
}

/// What an export carries of the run's attributes (the `attributes` extension): both sides'
/// encoders and display texts, and the items' encoded rows (a catalogue is small; the users'
/// rows stay out until a model reads them). `None` for a run without attribute tables.
fn exported_attributes(attributes: &ember_data::RunAttributes) -> Option<serde_json::Value> {
    let side = |loaded: &Option<ember_data::LoadedAttributes>, rows: bool| {
        loaded.as_ref().map(|a| {
            let mut side = a.side.clone();
            if !rows {
                side.features = None;
            }
            side
        })
    };
    let exported = ember_infer::ExportedAttributes {
        users: side(&attributes.users, false),
        items: side(&attributes.items, true),
    };
    if exported.users.is_none() && exported.items.is_none() {
        return None;
    }
    Some(serde_json::to_value(exported).expect("attributes always serialise"))
}

/// Exports the model of run `run_dir` to the new directory `out` at `precision`.
pub fn export_run(
    run_dir: &Path,
    out: &Path,
    precision: Precision,
) -> Result<Manifest, TrainError> {
    let run = load_run(run_dir, Backend::Flex)?;
    let export = run.model.export();
    let metrics_path = run_dir.join(files::METRICS);
    let metrics = std::fs::read_to_string(&metrics_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    let mut manifest = Manifest::new(
        export.spec,
        precision,
        export_keys(&run.data.user_ids),
        export_keys(&run.data.item_ids),
    );
    manifest.dataset_fingerprint = dataset_fingerprint(&run.data);
    manifest.run_fingerprint = run_fingerprint(run_dir)?;
    manifest.metrics = metrics;
    if let Some(attributes) = exported_attributes(&run.attributes) {
        manifest
            .extensions
            .insert(ember_infer::ATTRIBUTES_EXTENSION.into(), attributes);
    }
    let tensors: Vec<TensorF32> = export
        .tensors
        .into_iter()
        .map(|(name, shape, data)| TensorF32 { name, shape, data })
        .collect();
    // What the model reads of each user travels along: the items a history-based model
    // scores them from (for sequence models, training then validation items: everything
    // known; empty validation after a refit, which trained on them), the training ratings
    // of a rating model.
    let input = run.config.model.input();
    let readers = Readers::new(input, &run.data, HeldOut::Test);
    let ratings;
    let data = match input {
        Input::Pairs => ModelData::None,
        Input::RatingRows { item_based } => {
            ratings = rating_rows(&run.data, item_based);
            ModelData::Ratings(&ratings)
        }
        Input::UserRows { .. } | Input::Sequences { .. } => {
            ModelData::Histories(readers.histories())
        }
    };
    // Every (user, item) pair of the source, whatever preprocessing kept for training (a
    // movie rated 2 under `implicit_threshold = 4` is still one the user has seen), with the
    // day of each pair's latest interaction when the data has dates: queries on the export
    // leave them out by default, and explanations name them. A time-split run's export stands
    // at its cutoff: the pairs after it are what its backtests predict.
    let (items, days) = run.data.known_at_data_end();
    let known = KnownItems { items, days };
    write_model_known(out, &manifest, &tensors, data, known).map_err(TrainError::Export)
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
    let run = load_run(run_dir, Backend::Flex)?;
    let exported = ExportedModel::load(out).map_err(TrainError::Export)?;
    let plan = EvaluationPlan::new(&run.data, &run.config.eval.protocol, run.config.seed)
        .map_err(|e| TrainError::config(run_dir.join(files::CONFIG))(e.into()))?;
    let input = run.config.model.input();
    // A sequence model's export holds each user's items up to the test item (the validation
    // items included), so it is compared where it reads exactly that: on test.
    let which = if run.data.valid.iter().any(|v| !v.is_empty()) && !input.reads_sequences() {
        HeldOut::Validation
    } else {
        HeldOut::Test
    };
    let device = Backend::Flex.device()?;
    let eval = &run.config.eval;
    let trained = evaluate_model(
        &run.model,
        input,
        &run.data,
        &plan,
        which,
        eval,
        &device,
        &crate::collective::Solo,
    );
    let export = if input.predicts_ratings() {
        // Rating models: RMSE and MAE of the predicted ratings.
        let from_export = |pairs: &[(u32, u32)]| exported.score_internal_pairs(pairs);
        evaluate_ratings(&from_export, &run.data, which)
    } else {
        plan.evaluate(
            &ExportedScorer(&exported),
            &run.data,
            which,
            &eval.ks,
            eval.users_per_batch(run.data.num_items()),
        )
    };
    let metrics = trained
        .metrics
        .iter()
        .filter_map(|(name, value)| Some((name.clone(), *value, export.get(name)?)))
        .collect();
    let split = match which {
        HeldOut::Validation => "validation",
        HeldOut::Test if input.reads_sequences() => {
            "test (sequence model: its export reads the validation items)"
        }
        HeldOut::Test => "test (refit run: validation was trained on)",
    };
    let weights = out.join("model.safetensors");
    let bytes = std::fs::metadata(&weights)
        .map_err(TrainError::io(&weights))?
        .len();
    Ok(ExportCheck {
        label: if input.predicts_ratings() {
            format!("{split}, {}", trained.protocol)
        } else {
            format!("{split}, {}", plan.label(which))
        },
        metrics,
        bytes,
    })
}
