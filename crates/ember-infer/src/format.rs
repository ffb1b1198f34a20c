//! The exported format: manifest, tensor names and shapes, and the writer.

use safetensors::{Dtype, View};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fs;
use std::path::Path;

use crate::InferError;
use crate::quant::{f32_to_f16, quantize_rows};

/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Numeric precision of the stored matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// 32-bit floats.
    F32,
    /// IEEE half floats.
    F16,
    /// Symmetric int8 with one f32 scale per row.
    Int8,
}

/// The model kind and the sizes that fix every tensor's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelSpec {
    /// Matrix factorisation: `p_u · q_i`.
    Mf {
        /// Latent dimension.
        factors: usize,
    },
    /// GMF: `hᵀ(p_u ⊙ q_i) + b`.
    Gmf {
        /// Latent dimension.
        factors: usize,
    },
    /// MLP over `[p_u ‖ q_i]` with ReLU layers.
    Mlp {
        /// Layer sizes, the first being the concatenated embedding size.
        layers: Vec<usize>,
    },
    /// NeuMF: GMF and MLP parts fused in the output layer.
    #[serde(rename = "neumf")]
    NeuMf {
        /// GMF latent dimension.
        factors: usize,
        /// MLP layer sizes.
        layers: Vec<usize>,
    },
    /// Mult-DAE: `I → hidden… → I` with tanh, scoring a user from their item history.
    MultDae {
        /// Encoder sizes after the item layer, the last being the code.
        hidden: Vec<usize>,
    },
    /// Mult-VAE: as Mult-DAE, the encoder's last layer giving the code's mean and log-variance
    /// (`2 × code` outputs; scoring uses the mean).
    MultVae {
        /// Encoder sizes after the item layer, the last being the code's dimension.
        hidden: Vec<usize>,
    },
    /// CDAE: `σ(Wᵀ y_u + V_u + b)` decoded to one logit per item; a user given only by a history
    /// gets a zero user vector.
    Cdae {
        /// Code size.
        hidden: usize,
    },
    /// AutoRec: `W σ(V r + μ) + b` reconstructs a row of the rating matrix (an item's ratings by
    /// every user when `item_based`, else a user's ratings of every item); scores are
    /// predicted ratings, clipped to the training range.
    #[serde(rename = "autorec")]
    AutoRec {
        /// Hidden units.
        hidden: usize,
        /// Rows are items (I-AutoRec) rather than users (U-AutoRec).
        item_based: bool,
    },
    /// SASRec: causal self-attention over the user's last `max_len` items; the last position's
    /// state scores every item by a dot product with the item embeddings. Per block:
    /// `q = LN(x)`, `x = q + attention(q, x, x)`, `x = LN(x)`, `x = x + W₂ ReLU(W₁ x)`; a final
    /// layer norm. Item `i` is row `i + 1` of `items.weight` (row 0 pads).
    #[serde(rename = "sasrec")]
    SasRec {
        /// Hidden size.
        hidden: usize,
        /// Self-attention blocks.
        blocks: usize,
        /// Attention heads.
        heads: usize,
        /// Window length.
        max_len: usize,
        /// ε of every layer norm.
        layer_norm_epsilon: f64,
    },
    /// BERT4Rec: a bidirectional post-norm encoder over the user's last `max_len - 1` items
    /// followed by the mask token (the last row of `items.weight`); the mask position's state,
    /// through the head `LN(GELU(W h))`, scores every item against the item embeddings plus
    /// `output_bias`. Per block: `x = LN(x + attention(x, x, x))`, `x = LN(x + W₂ GELU(W₁ x))`.
    #[serde(rename = "bert4rec")]
    Bert4Rec {
        /// Hidden size (the feed-forward layer is 4 × wider).
        hidden: usize,
        /// Encoder blocks.
        blocks: usize,
        /// Attention heads.
        heads: usize,
        /// Window length, the mask token included.
        max_len: usize,
        /// ε of every layer norm.
        layer_norm_epsilon: f64,
    },
}

impl ModelSpec {
    /// Whether the model predicts ratings from stored training ratings (AutoRec).
    pub fn reads_ratings(&self) -> bool {
        matches!(self, ModelSpec::AutoRec { .. })
    }

    /// Whether the model reads a user as their item history (the autoencoders and the
    /// sequence models), which the export then stores (see [`HISTORY_OFFSETS`]).
    pub fn reads_histories(&self) -> bool {
        matches!(
            self,
            ModelSpec::MultDae { .. } | ModelSpec::MultVae { .. } | ModelSpec::Cdae { .. }
        ) || self.reads_sequences()
    }

    /// Whether the stored histories are sequences (time order, repeats kept: SASRec and
    /// BERT4Rec) rather than sets (sorted, distinct: the autoencoders).
    pub fn reads_sequences(&self) -> bool {
        matches!(self, ModelSpec::SasRec { .. } | ModelSpec::Bert4Rec { .. })
    }
}

/// For rating models (AutoRec): `[rows + 1]` I64 offsets into [`RATINGS_COLUMNS`] and
/// [`RATINGS_VALUES`], rows being items for I-AutoRec and users for U-AutoRec.
pub const RATINGS_OFFSETS: &str = "ratings.offsets";
/// For rating models: each training rating's column (user for I-AutoRec), as I32.
pub const RATINGS_COLUMNS: &str = "ratings.columns";
/// For rating models: each training rating, as F32.
pub const RATINGS_VALUES: &str = "ratings.values";

/// What an export stores beside the weights, by model kind.
#[derive(Debug, Clone, Copy)]
pub enum ModelData<'a> {
    /// Nothing (the id-based models).
    None,
    /// Each user's items (internal ids): the history-based models. The autoencoders store the
    /// training items; the sequence models the training then validation items, in time order.
    Histories(&'a [Vec<u32>]),
    /// The training rating matrix as rows of `(column, rating)` (AutoRec).
    Ratings(&'a [Vec<(u32, f32)>]),
}

/// For history-based models: `[users + 1]` I64 offsets into [`HISTORY_ITEMS`]; user `u`'s
/// items are `items[offsets[u]..offsets[u + 1]]`: the training items, sorted and distinct, for
/// the autoencoders; the training then validation items, in time order, for the sequence
/// models.
pub const HISTORY_OFFSETS: &str = "history.offsets";
/// For history-based models: every user's items (internal ids), as I32.
pub const HISTORY_ITEMS: &str = "history.items";

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Model kind and shape.
    pub model: ModelSpec,
    /// Precision of the stored matrices.
    pub precision: Precision,
    /// External user ids, indexed by internal id.
    pub user_ids: Vec<i64>,
    /// External item ids, indexed by internal id.
    pub item_ids: Vec<i64>,
    /// A hash of the training data, to tell which data a model was trained on.
    pub dataset_fingerprint: String,
    /// Training-side metrics, as the run reported them.
    #[serde(default)]
    pub metrics: serde_json::Value,
}

/// A tensor in f32, as the training side hands it over.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorF32 {
    /// Name (see [`expected_tensors`]).
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

fn layers_valid(layers: &[usize]) -> bool {
    layers.len() >= 2 && layers[0] % 2 == 0 && !layers.contains(&0)
}

/// The tensors a model of this spec has, with their logical shapes, for `users` × `items`.
/// `None` when the spec itself is invalid (zero sizes, unusable layers).
pub fn expected_tensors(
    spec: &ModelSpec,
    users: usize,
    items: usize,
) -> Option<Vec<(String, Vec<usize>)>> {
    let mut out = Vec::new();
    let mut push = |name: &str, shape: Vec<usize>| out.push((name.to_string(), shape));
    let tower = |push: &mut dyn FnMut(&str, Vec<usize>), layers: &[usize]| {
        for (k, w) in layers.windows(2).enumerate() {
            push(&format!("tower.layers.{k}.weight"), vec![w[0], w[1]]);
            push(&format!("tower.layers.{k}.bias"), vec![w[1]]);
        }
    };
    match spec {
        ModelSpec::Mf { factors } | ModelSpec::Gmf { factors } => {
            if *factors == 0 {
                return None;
            }
            push("users.weight", vec![users, *factors]);
            push("items.weight", vec![items, *factors]);
            if matches!(spec, ModelSpec::Gmf { .. }) {
                push("output.weight", vec![*factors, 1]);
                push("output.bias", vec![1]);
            }
        }
        ModelSpec::Mlp { layers } => {
            if !layers_valid(layers) {
                return None;
            }
            push("users.weight", vec![users, layers[0] / 2]);
            push("items.weight", vec![items, layers[0] / 2]);
            tower(&mut push, layers);
            push("output.weight", vec![*layers.last()?, 1]);
            push("output.bias", vec![1]);
        }
        ModelSpec::NeuMf { factors, layers } => {
            if *factors == 0 || !layers_valid(layers) {
                return None;
            }
            push("gmf_users.weight", vec![users, *factors]);
            push("gmf_items.weight", vec![items, *factors]);
            push("mlp_users.weight", vec![users, layers[0] / 2]);
            push("mlp_items.weight", vec![items, layers[0] / 2]);
            tower(&mut push, layers);
            push(
                "output.weight",
                vec![factors.checked_add(*layers.last()?)?, 1],
            );
            push("output.bias", vec![1]);
        }
        ModelSpec::MultDae { hidden } | ModelSpec::MultVae { hidden } => {
            if items == 0 || hidden.is_empty() || hidden.contains(&0) {
                return None;
            }
            let sizes: Vec<usize> = std::iter::once(items)
                .chain(hidden.iter().copied())
                .collect();
            let mut encoder = sizes.clone();
            if matches!(spec, ModelSpec::MultVae { .. }) {
                let code = encoder.last_mut()?;
                *code = code.checked_mul(2)?;
            }
            let decoder: Vec<usize> = sizes.iter().rev().copied().collect();
            for (part, sizes) in [("encoder", &encoder), ("decoder", &decoder)] {
                for (k, w) in sizes.windows(2).enumerate() {
                    push(&format!("{part}.{k}.weight"), vec![w[0], w[1]]);
                    push(&format!("{part}.{k}.bias"), vec![w[1]]);
                }
            }
        }
        ModelSpec::AutoRec { hidden, item_based } => {
            let width = if *item_based { users } else { items };
            if width == 0 || *hidden == 0 {
                return None;
            }
            push("encoder.weight", vec![width, *hidden]);
            push("encoder.bias", vec![*hidden]);
            push("decoder.weight", vec![*hidden, width]);
            push("decoder.bias", vec![width]);
        }
        ModelSpec::SasRec {
            hidden,
            blocks,
            heads,
            max_len,
            layer_norm_epsilon,
        }
        | ModelSpec::Bert4Rec {
            hidden,
            blocks,
            heads,
            max_len,
            layer_norm_epsilon,
        } => {
            let bert = matches!(spec, ModelSpec::Bert4Rec { .. });
            let (hidden, max_len) = (*hidden, *max_len);
            if items == 0
                || hidden == 0
                || *heads == 0
                || hidden % heads != 0
                || max_len < 1 + bert as usize
                || !(*layer_norm_epsilon > 0.0 && layer_norm_epsilon.is_finite())
            {
                return None;
            }
            let ff = if bert { hidden.checked_mul(4)? } else { hidden };
            let linear = |push: &mut dyn FnMut(&str, Vec<usize>), name: &str, i, o| {
                push(&format!("{name}.weight"), vec![i, o]);
                push(&format!("{name}.bias"), vec![o]);
            };
            let norm = |push: &mut dyn FnMut(&str, Vec<usize>), name: &str| {
                push(&format!("{name}.gamma"), vec![hidden]);
                push(&format!("{name}.beta"), vec![hidden]);
            };
            // Rows: padding, the items, and BERT4Rec's mask token.
            push(
                "items.weight",
                vec![items.checked_add(1 + bert as usize)?, hidden],
            );
            push("positions.weight", vec![max_len, hidden]);
            if bert {
                norm(&mut push, "embedding_norm");
            }
            for k in 0..*blocks {
                norm(&mut push, &format!("blocks.{k}.attention_norm"));
                for part in ["query", "key", "value", "output"] {
                    linear(
                        &mut push,
                        &format!("blocks.{k}.attention.{part}"),
                        hidden,
                        hidden,
                    );
                }
                norm(&mut push, &format!("blocks.{k}.feed_forward_norm"));
                linear(
                    &mut push,
                    &format!("blocks.{k}.feed_forward_in"),
                    hidden,
                    ff,
                );
                linear(
                    &mut push,
                    &format!("blocks.{k}.feed_forward_out"),
                    ff,
                    hidden,
                );
            }
            if bert {
                linear(&mut push, "head", hidden, hidden);
                norm(&mut push, "head_norm");
                push("output_bias", vec![items]);
            } else {
                norm(&mut push, "final_norm");
            }
        }
        ModelSpec::Cdae { hidden } => {
            if items == 0 || *hidden == 0 {
                return None;
            }
            push("encoder.weight", vec![items, *hidden]);
            push("encoder.bias", vec![*hidden]);
            push("users.weight", vec![users, *hidden]);
            push("decoder.weight", vec![*hidden, items]);
            push("decoder.bias", vec![items]);
        }
    }
    Some(out)
}

/// Bytes of one stored tensor, for safetensors' writer.
struct Stored {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Stored {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Writes `manifest.json` and `model.safetensors` into a new directory `dir`, converting the
/// matrices to the manifest's precision. Everything is written under a temporary name and
/// renamed at the end, so an interrupted export leaves no readable half-model.
pub fn write_model(
    dir: &Path,
    manifest: &Manifest,
    tensors: &[TensorF32],
) -> Result<(), InferError> {
    write_model_with(dir, manifest, tensors, ModelData::None)
}

/// [`write_model`] for any model kind: history-based models
/// ([`ModelSpec::reads_histories`]) need each user's training items (internal ids), and
/// AutoRec its training ratings ([`ModelSpec::reads_ratings`]), stored beside the weights so
/// that the users of the training data can be scored.
pub fn write_model_with(
    dir: &Path,
    manifest: &Manifest,
    tensors: &[TensorF32],
    data: ModelData<'_>,
) -> Result<(), InferError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |error| InferError::Io { path, error }
    };
    let expected = expected_tensors(
        &manifest.model,
        manifest.user_ids.len(),
        manifest.item_ids.len(),
    )
    .ok_or_else(|| InferError::Manifest {
        path: dir.join("manifest.json"),
        message: "invalid model spec".into(),
    })?;
    for (name, shape) in &expected {
        let t = tensors
            .iter()
            .find(|t| &t.name == name)
            .ok_or_else(|| InferError::Tensor {
                name: name.clone(),
                message: "missing from the exported model".into(),
            })?;
        if &t.shape != shape || t.data.len() != shape.iter().product::<usize>() {
            return Err(InferError::Tensor {
                name: name.clone(),
                message: format!(
                    "shape {:?} with {} values, expected {shape:?}",
                    t.shape,
                    t.data.len()
                ),
            });
        }
    }
    let mut stored: Vec<(String, Stored)> = Vec::new();
    let histories = match data {
        ModelData::Histories(h) => Some(h),
        _ => None,
    };
    match (&manifest.model, data) {
        (ModelSpec::AutoRec { item_based, .. }, ModelData::Ratings(rows)) => {
            let (users, items) = (manifest.user_ids.len(), manifest.item_ids.len());
            let (n_rows, width) = if *item_based {
                (items, users)
            } else {
                (users, items)
            };
            if rows.len() != n_rows
                || rows
                    .iter()
                    .flatten()
                    .any(|&(c, v)| c as usize >= width || !v.is_finite())
            {
                return Err(InferError::Tensor {
                    name: RATINGS_COLUMNS.into(),
                    message: format!(
                        "{} rating rows for {n_rows}, or a column outside {width}, or a non-finite rating",
                        rows.len()
                    ),
                });
            }
            let mut offsets = vec![0i64];
            let (mut columns, mut values) = (Vec::new(), Vec::new());
            for row in rows {
                let mut row = row.clone();
                row.sort_by_key(|&(c, _)| c);
                row.dedup_by_key(|&mut (c, _)| c);
                columns.extend(row.iter().map(|&(c, _)| c as i32));
                values.extend(row.iter().map(|&(_, v)| v));
                offsets.push(columns.len() as i64);
            }
            for (name, dtype, shape, bytes) in [
                (
                    RATINGS_OFFSETS,
                    Dtype::I64,
                    offsets.len(),
                    offsets
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect::<Vec<u8>>(),
                ),
                (
                    RATINGS_COLUMNS,
                    Dtype::I32,
                    columns.len(),
                    columns.iter().flat_map(|v| v.to_le_bytes()).collect(),
                ),
                (
                    RATINGS_VALUES,
                    Dtype::F32,
                    values.len(),
                    values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                ),
            ] {
                stored.push((
                    name.into(),
                    Stored {
                        dtype,
                        shape: vec![shape],
                        bytes,
                    },
                ));
            }
        }
        (ModelSpec::AutoRec { .. }, _) | (_, ModelData::Ratings(_)) => {
            return Err(InferError::Tensor {
                name: RATINGS_VALUES.into(),
                message: "AutoRec, and only AutoRec, is exported with its training ratings".into(),
            });
        }
        _ => {}
    }
    match (manifest.model.reads_histories(), histories) {
        (false, None) => {}
        (true, Some(histories)) => {
            let (users, items) = (manifest.user_ids.len(), manifest.item_ids.len());
            if histories.len() != users || histories.iter().flatten().any(|&i| i as usize >= items)
            {
                return Err(InferError::Tensor {
                    name: HISTORY_ITEMS.into(),
                    message: format!(
                        "{} histories for {users} users, or an item outside the {items} items",
                        histories.len()
                    ),
                });
            }
            let mut offsets = vec![0i64];
            let mut all = Vec::new();
            for h in histories {
                let mut h = h.clone();
                if !manifest.model.reads_sequences() {
                    h.sort_unstable();
                    h.dedup();
                }
                all.extend(h.iter().map(|&i| i as i32));
                offsets.push(all.len() as i64);
            }
            stored.push((
                HISTORY_OFFSETS.into(),
                Stored {
                    dtype: Dtype::I64,
                    shape: vec![offsets.len()],
                    bytes: offsets.iter().flat_map(|v| v.to_le_bytes()).collect(),
                },
            ));
            stored.push((
                HISTORY_ITEMS.into(),
                Stored {
                    dtype: Dtype::I32,
                    shape: vec![all.len()],
                    bytes: all.iter().flat_map(|v| v.to_le_bytes()).collect(),
                },
            ));
        }
        (needed, _) => {
            return Err(InferError::Tensor {
                name: HISTORY_ITEMS.into(),
                message: if needed {
                    "this model kind needs the users' histories".into()
                } else {
                    "this model kind takes no histories".into()
                },
            });
        }
    }
    for (name, shape) in &expected {
        let t = tensors
            .iter()
            .find(|t| &t.name == name)
            .expect("checked above");
        let matrix = shape.len() == 2;
        match (manifest.precision, matrix) {
            (Precision::F16, true) => {
                let bytes = t
                    .data
                    .iter()
                    .flat_map(|v| f32_to_f16(*v).to_le_bytes())
                    .collect();
                stored.push((
                    name.clone(),
                    Stored {
                        dtype: Dtype::F16,
                        shape: shape.clone(),
                        bytes,
                    },
                ));
            }
            (Precision::Int8, true) => {
                let (q, scales) = quantize_rows(&t.data, shape[1]);
                let bytes = q.iter().map(|v| *v as u8).collect();
                stored.push((
                    name.clone(),
                    Stored {
                        dtype: Dtype::I8,
                        shape: shape.clone(),
                        bytes,
                    },
                ));
                let bytes = scales.iter().flat_map(|v| v.to_le_bytes()).collect();
                stored.push((
                    format!("{name}.scale"),
                    Stored {
                        dtype: Dtype::F32,
                        shape: vec![shape[0]],
                        bytes,
                    },
                ));
            }
            _ => {
                let bytes = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
                stored.push((
                    name.clone(),
                    Stored {
                        dtype: Dtype::F32,
                        shape: shape.clone(),
                        bytes,
                    },
                ));
            }
        }
    }
    if dir.exists() {
        return Err(InferError::Io {
            path: dir.to_owned(),
            error: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "already exists; choose a new directory",
            ),
        });
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io(parent))?;
    let partial = parent.join(format!(
        ".{}.partial-{}",
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| {
        fs::create_dir_all(&partial).map_err(io(&partial))?;
        let views: Vec<(String, &Stored)> = stored.iter().map(|(n, s)| (n.clone(), s)).collect();
        let bytes = safetensors::serialize(views, None).map_err(|e| InferError::Safetensors {
            path: partial.join("model.safetensors"),
            message: e.to_string(),
        })?;
        fs::write(partial.join("model.safetensors"), bytes)
            .map_err(io(&partial.join("model.safetensors")))?;
        let json = serde_json::to_string_pretty(manifest).expect("a manifest always serialises");
        fs::write(partial.join("manifest.json"), json)
            .map_err(io(&partial.join("manifest.json")))?;
        fs::rename(&partial, dir).map_err(io(dir))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&partial);
    }
    result
}
