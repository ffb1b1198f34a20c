//! Loading an exported model and answering queries.

use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::Path;

use crate::format::{
    FORMAT_VERSION, HISTORY_ITEMS, HISTORY_OFFSETS, Manifest, ModelSpec, RATINGS_COLUMNS,
    RATINGS_OFFSETS, RATINGS_VALUES, expected_tensors,
};
use crate::kernels::{dot, dot_rows_f32, dot_rows_i8};
use crate::quant::f16_to_f32;
use crate::sequence::{Architecture, Attention, Block, Norm, SequenceModel};
use crate::{InferError, Precision};

/// Manifests larger than this are refused before parsing (a model's id maps are far smaller).
const MAX_MANIFEST_BYTES: u64 = 1 << 30;

/// A `[rows, cols]` f32 matrix.
#[derive(Debug, Clone)]
pub(crate) struct Matrix {
    pub(crate) cols: usize,
    pub(crate) data: Vec<f32>,
}

impl Matrix {
    pub(crate) fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }
}

/// Int8 rows with one scale each, kept in memory for int8 models so that scoring every item
/// reads a quarter of the bytes (top-k over a large catalogue is memory-bound).
#[derive(Debug, Clone)]
struct QuantRows {
    cols: usize,
    q: Vec<i8>,
    scale: Vec<f32>,
}

impl QuantRows {
    fn new(m: &Matrix) -> Self {
        let (q, scale) = crate::quant::quantize_rows(&m.data, m.cols);
        Self {
            cols: m.cols,
            q,
            scale,
        }
    }

    /// `query · row(r)`.
    fn dot(&self, query: &[f32], r: usize) -> f32 {
        let mut out = [0.0f32];
        dot_rows_i8(
            query,
            &self.q[r * self.cols..(r + 1) * self.cols],
            &self.scale[r..r + 1],
            &mut out,
        );
        out[0]
    }
}

/// A dense layer `x W + b` with `W` stored `[inputs, outputs]`.
#[derive(Debug, Clone)]
pub(crate) struct Dense {
    pub(crate) weight: Matrix,
    pub(crate) bias: Vec<f32>,
}

impl Dense {
    pub(crate) fn apply(&self, x: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.extend_from_slice(&self.bias);
        for (i, &xi) in x.iter().enumerate() {
            if xi != 0.0 {
                for (o, w) in out.iter_mut().zip(self.weight.row(i)) {
                    *o += xi * w;
                }
            }
        }
    }
}

/// The MLP part: the first layer is split into its user and item halves, whose products are
/// computed once per user and once per item at load time.
#[derive(Debug, Clone)]
struct Tower {
    user_proj: Matrix,
    item_proj: Matrix,
    first_bias: Vec<f32>,
    rest: Vec<Dense>,
}

impl Tower {
    fn new(users: &Matrix, items: &Matrix, layers: Vec<Dense>) -> Self {
        let mut layers = layers.into_iter();
        let first = layers.next().expect("at least one layer");
        let half = users.cols;
        let width = first.weight.cols;
        let project = |emb: &Matrix, offset: usize| {
            let rows = emb.data.len() / emb.cols.max(1);
            let mut data = vec![0.0f32; rows * width];
            for r in 0..rows {
                let out = &mut data[r * width..(r + 1) * width];
                for (i, &x) in emb.row(r).iter().enumerate() {
                    for (o, w) in out.iter_mut().zip(first.weight.row(offset + i)) {
                        *o += x * w;
                    }
                }
            }
            Matrix { cols: width, data }
        };
        Tower {
            user_proj: project(users, 0),
            item_proj: project(items, half),
            first_bias: first.bias.clone(),
            rest: layers.collect(),
        }
    }

    /// The last hidden layer for (user, item), written into `h`.
    fn hidden(&self, user: usize, item: usize, h: &mut Vec<f32>, scratch: &mut Vec<f32>) {
        h.clear();
        h.extend(
            self.user_proj
                .row(user)
                .iter()
                .zip(self.item_proj.row(item))
                .zip(&self.first_bias)
                .map(|((u, i), b)| (u + i + b).max(0.0)),
        );
        for layer in &self.rest {
            layer.apply(h, scratch);
            scratch.iter_mut().for_each(|v| *v = v.max(0.0));
            std::mem::swap(h, scratch);
        }
    }
}

#[derive(Debug, Clone)]
enum Weights {
    Mf {
        users: Matrix,
        items: Matrix,
        items_q: Option<QuantRows>,
    },
    Gmf {
        users: Matrix,
        items: Matrix,
        items_q: Option<QuantRows>,
        h: Vec<f32>,
        b: f32,
    },
    Mlp {
        tower: Tower,
        h: Vec<f32>,
        b: f32,
    },
    NeuMf {
        users: Matrix,
        items: Matrix,
        tower: Tower,
        h: Vec<f32>,
        b: f32,
    },
    /// Mult-DAE, Mult-VAE and CDAE, with every user's training items.
    Autoencoder(Autoencoder),
    /// AutoRec, with the training ratings.
    AutoRec(AutoRecWeights),
    /// SASRec and BERT4Rec, with every user's training sequence.
    Sequence(SequenceModel),
}

/// AutoRec: `W σ(V r + μ) + b` over rows of the training rating matrix.
#[derive(Debug, Clone)]
struct AutoRecWeights {
    encoder: Dense,
    decoder: Dense,
    /// Rows are items (columns users) when true; users (columns items) otherwise.
    item_based: bool,
    /// Row `r`'s ratings: `columns[offsets[r]..offsets[r + 1]]`, `values[…]`.
    offsets: Vec<usize>,
    columns: Vec<u32>,
    values: Vec<f32>,
    /// Users and items with a training rating; the others are predicted the midpoint.
    seen_users: Vec<bool>,
    seen_items: Vec<bool>,
    /// The training ratings' range, to which predictions are clipped.
    low: f32,
    high: f32,
}

impl AutoRecWeights {
    /// The reconstructed row `r` (one predicted rating per column, unclipped).
    fn decode(&self, r: usize, out: &mut Vec<f32>) {
        let mut h = self.encoder.bias.clone();
        for k in self.offsets[r]..self.offsets[r + 1] {
            let (c, v) = (self.columns[k] as usize, self.values[k]);
            for (o, w) in h.iter_mut().zip(self.encoder.weight.row(c)) {
                *o += v * w;
            }
        }
        h.iter_mut().for_each(|x| *x = 1.0 / (1.0 + (-*x).exp()));
        self.decoder.apply(&h, out);
    }

    /// (row, column) of a (user, item) pair.
    fn cell(&self, u: usize, i: usize) -> (usize, usize) {
        if self.item_based { (i, u) } else { (u, i) }
    }

    /// The predicted rating of (u, i), given the decoded row of the pair's row.
    fn rating(&self, u: usize, i: usize, decoded: &[f32]) -> f32 {
        if !self.seen_users[u] || !self.seen_items[i] {
            return (self.low + self.high) / 2.0;
        }
        decoded[self.cell(u, i).1].clamp(self.low, self.high)
    }
}

/// Which autoencoder, with what sets them apart.
#[derive(Debug, Clone)]
enum Flavour {
    /// Mult-DAE: L2-normalised input, tanh layers, tanh on the code.
    Dae,
    /// Mult-VAE: as Mult-DAE, the code being the mean half of the encoder's output.
    Vae,
    /// CDAE: raw 0/1 input, `σ(…+ V_u)` code with the user's vector, one layer each way.
    Cdae { users: Matrix },
}

/// An autoencoder over item histories (Mult-DAE, Mult-VAE, CDAE), computed as the training side
/// does at evaluation (no dropout; the code's mean for Mult-VAE).
#[derive(Debug, Clone)]
struct Autoencoder {
    encoder: Vec<Dense>,
    decoder: Vec<Dense>,
    flavour: Flavour,
    /// User `u`'s items are `history[offsets[u]..offsets[u + 1]]` (sorted, distinct).
    offsets: Vec<usize>,
    history: Vec<u32>,
}

impl Autoencoder {
    fn user_history(&self, u: usize) -> &[u32] {
        &self.history[self.offsets[u]..self.offsets[u + 1]]
    }

    /// Logits of every item for the history `items` (distinct internal ids) of internal user
    /// `user` (`None`: a user the model was not trained on), into `out`.
    fn scores(&self, items: &[u32], user: Option<usize>, out: &mut Vec<f32>) {
        let first = &self.encoder[0];
        // The first layer reads a row with one value at each of the n items: a sum of n rows.
        let value = match self.flavour {
            Flavour::Cdae { .. } => 1.0,
            _ => 1.0 / (items.len().max(1) as f32).sqrt(), // the L2-normalised row
        };
        let mut h = first.bias.clone();
        for &i in items {
            for (o, w) in h.iter_mut().zip(first.weight.row(i as usize)) {
                *o += value * w;
            }
        }
        let tanh = |h: &mut Vec<f32>| h.iter_mut().for_each(|v| *v = v.tanh());
        let mut next = Vec::new();
        for layer in &self.encoder[1..] {
            tanh(&mut h);
            layer.apply(&h, &mut next);
            std::mem::swap(&mut h, &mut next);
        }
        match &self.flavour {
            Flavour::Dae => tanh(&mut h),
            Flavour::Vae => h.truncate(h.len() / 2), // the mean; the log-variance is unused
            Flavour::Cdae { users } => {
                if let Some(u) = user {
                    h.iter_mut().zip(users.row(u)).for_each(|(v, p)| *v += p);
                }
                h.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp()));
            }
        }
        for (k, layer) in self.decoder.iter().enumerate() {
            if k > 0 {
                tanh(&mut h);
            }
            layer.apply(&h, &mut next);
            std::mem::swap(&mut h, &mut next);
        }
        *out = h;
    }

    /// [`Self::scores`] of a user of the training data, from their stored history.
    fn user_scores(&self, u: usize, out: &mut Vec<f32>) {
        self.scores(self.user_history(u), Some(u), out)
    }
}

/// A loaded model. Immutable, so it can be shared between threads (`Arc<ExportedModel>`).
#[derive(Debug, Clone)]
pub struct ExportedModel {
    manifest: Manifest,
    weights: Weights,
    users: HashMap<i64, u32>,
    items: HashMap<i64, u32>,
}

/// An external id with its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// External id (item for recommendations, user for audiences).
    pub id: i64,
    /// Model score (a logit: higher is better).
    pub score: f32,
}

/// For an int8 model, keeps the item rows as int8 (freeing the f32 copy); otherwise as they are.
fn keep_int8(items: Matrix, precision: Precision) -> (Matrix, Option<QuantRows>) {
    if precision != Precision::Int8 {
        return (items, None);
    }
    // The rows were stored as q × scale with max |q| = 127, so quantising again gives back the
    // stored int8 values and scales exactly.
    let quantized = QuantRows::new(&items);
    (
        Matrix {
            cols: items.cols,
            data: Vec::new(),
        },
        Some(quantized),
    )
}

/// `query · item i`, from the int8 rows when the model keeps them.
fn item_dot(items: &Matrix, items_q: &Option<QuantRows>, query: &[f32], i: usize) -> f32 {
    match items_q {
        Some(rows) => rows.dot(query, i),
        None => dot(query, items.row(i)),
    }
}

fn tensor_error(name: &str, message: impl Into<String>) -> InferError {
    InferError::Tensor {
        name: name.to_string(),
        message: message.into(),
    }
}

/// Reads every tensor of the file as f32, after checking names, shapes and dtypes against the
/// manifest.
fn read_tensors(
    bytes: &[u8],
    path: &Path,
    manifest: &Manifest,
) -> Result<HashMap<String, Matrix>, InferError> {
    let expected = expected_tensors(
        &manifest.model,
        manifest.user_ids.len(),
        manifest.item_ids.len(),
    )
    .ok_or_else(|| InferError::Manifest {
        path: path.with_file_name("manifest.json"),
        message: "invalid model sizes".into(),
    })?;
    let file = SafeTensors::deserialize(bytes).map_err(|e| InferError::Safetensors {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    // The stored names: each expected tensor, plus a scale per int8 matrix.
    let mut stored: Vec<(String, Vec<usize>, Dtype)> = Vec::new();
    for (name, shape) in &expected {
        let matrix = shape.len() == 2;
        match (manifest.precision, matrix) {
            (Precision::F16, true) => stored.push((name.clone(), shape.clone(), Dtype::F16)),
            (Precision::Int8, true) => {
                stored.push((name.clone(), shape.clone(), Dtype::I8));
                stored.push((format!("{name}.scale"), vec![shape[0]], Dtype::F32));
            }
            _ => stored.push((name.clone(), shape.clone(), Dtype::F32)),
        }
    }
    let histories = manifest.model.reads_histories();
    for name in file.names() {
        let history = (histories && (name == HISTORY_OFFSETS || name == HISTORY_ITEMS))
            || (manifest.model.reads_ratings()
                && [RATINGS_OFFSETS, RATINGS_COLUMNS, RATINGS_VALUES].contains(&name));
        if !history && !stored.iter().any(|(n, _, _)| n == name) {
            return Err(tensor_error(name, "not part of this model kind"));
        }
    }
    for (name, shape, dtype) in &stored {
        let view = file
            .tensor(name)
            .map_err(|_| tensor_error(name, "missing"))?;
        if view.shape() != shape.as_slice() || view.dtype() != *dtype {
            return Err(tensor_error(
                name,
                format!(
                    "stored as {:?} {:?}, the manifest needs {dtype:?} {shape:?}",
                    view.dtype(),
                    view.shape()
                ),
            ));
        }
    }
    // Only now, with every size checked against the file, decode.
    let mut out = HashMap::new();
    for (name, shape) in &expected {
        let view = file.tensor(name).expect("checked");
        let raw = view.data();
        let cols = if shape.len() == 2 { shape[1] } else { shape[0] };
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => raw
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            Dtype::I8 => {
                let scales = file
                    .tensor(&format!("{name}.scale"))
                    .expect("checked")
                    .data();
                let scales: Vec<f32> = scales
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                raw.iter()
                    .enumerate()
                    .map(|(i, q)| (*q as i8) as f32 * scales[i / cols.max(1)])
                    .collect()
            }
            other => return Err(tensor_error(name, format!("unsupported dtype {other:?}"))),
        };
        if data.iter().any(|v| !v.is_finite()) {
            return Err(tensor_error(name, "holds NaN or infinite values"));
        }
        out.insert(name.clone(), Matrix { cols, data });
    }
    Ok(out)
}

/// A 1-D tensor of `dtype` named `name`, or why not.
fn vector<'a>(
    file: &'a SafeTensors<'a>,
    name: &str,
    dtype: Dtype,
) -> Result<safetensors::tensor::TensorView<'a>, InferError> {
    let view = file
        .tensor(name)
        .map_err(|_| tensor_error(name, "missing"))?;
    if view.dtype() != dtype || view.shape().len() != 1 {
        return Err(tensor_error(
            name,
            format!(
                "stored as {:?} {:?}, expected {dtype:?} [n]",
                view.dtype(),
                view.shape()
            ),
        ));
    }
    Ok(view)
}

/// Reads and checks a sparse matrix stored as rows: `rows + 1` I64 offsets (from 0, never
/// decreasing, ending at the entry count) into I32 column indices below `width`; with `sets`,
/// sorted and distinct within each row (the training side's rows hold each column once), else
/// in any order (sequences).
fn read_sparse_rows(
    file: &SafeTensors<'_>,
    (offsets_name, columns_name): (&str, &str),
    rows: usize,
    width: usize,
    sets: bool,
) -> Result<(Vec<usize>, Vec<u32>), InferError> {
    let offsets = vector(file, offsets_name, Dtype::I64)?;
    let columns = vector(file, columns_name, Dtype::I32)?;
    if offsets.shape()[0] != rows + 1 {
        return Err(tensor_error(
            offsets_name,
            format!("{} offsets, expected {}", offsets.shape()[0], rows + 1),
        ));
    }
    let n = columns.shape()[0];
    let offsets: Vec<i64> = offsets
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    if offsets[0] != 0 || offsets.windows(2).any(|w| w[1] < w[0]) || offsets[rows] != n as i64 {
        return Err(tensor_error(
            offsets_name,
            "must start at 0, never decrease, and end at the entry count",
        ));
    }
    let offsets: Vec<usize> = offsets.into_iter().map(|o| o as usize).collect();
    let columns: Vec<u32> = columns
        .data()
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")))
        .map(|c| u32::try_from(c).ok().filter(|&c| (c as usize) < width))
        .collect::<Option<_>>()
        .ok_or_else(|| tensor_error(columns_name, format!("an index outside 0..{width}")))?;
    if sets
        && offsets
            .windows(2)
            .any(|w| columns[w[0]..w[1]].windows(2).any(|p| p[0] >= p[1]))
    {
        return Err(tensor_error(
            columns_name,
            "each row's entries must be sorted and distinct",
        ));
    }
    Ok((offsets, columns))
}

fn parse_safetensors<'a>(bytes: &'a [u8], path: &Path) -> Result<SafeTensors<'a>, InferError> {
    SafeTensors::deserialize(bytes).map_err(|e| InferError::Safetensors {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// The stored histories of a history-based model: each user's items (as sets, or with
/// `sequences` in time order).
fn read_histories(
    bytes: &[u8],
    path: &Path,
    (users, items): (usize, usize),
    sequences: bool,
) -> Result<(Vec<usize>, Vec<u32>), InferError> {
    let file = parse_safetensors(bytes, path)?;
    read_sparse_rows(
        &file,
        (HISTORY_OFFSETS, HISTORY_ITEMS),
        users,
        items,
        !sequences,
    )
}

/// AutoRec's stored training ratings: rows of `(column, rating)` with finite ratings.
fn read_ratings(
    bytes: &[u8],
    path: &Path,
    rows: usize,
    width: usize,
) -> Result<(Vec<usize>, Vec<u32>, Vec<f32>), InferError> {
    let file = parse_safetensors(bytes, path)?;
    let (offsets, columns) =
        read_sparse_rows(&file, (RATINGS_OFFSETS, RATINGS_COLUMNS), rows, width, true)?;
    let values = vector(&file, RATINGS_VALUES, Dtype::F32)?;
    if values.shape()[0] != columns.len() {
        return Err(tensor_error(
            RATINGS_VALUES,
            format!("{} values for {} columns", values.shape()[0], columns.len()),
        ));
    }
    let values: Vec<f32> = values
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    if values.iter().any(|v| !v.is_finite()) {
        return Err(tensor_error(RATINGS_VALUES, "holds NaN or infinite values"));
    }
    Ok((offsets, columns, values))
}

fn id_index(ids: &[i64], what: &str, path: &Path) -> Result<HashMap<i64, u32>, InferError> {
    let mut map = HashMap::with_capacity(ids.len());
    for (i, &id) in ids.iter().enumerate() {
        if map.insert(id, i as u32).is_some() {
            return Err(InferError::Manifest {
                path: path.to_owned(),
                message: format!("{what} id {id} appears twice"),
            });
        }
    }
    Ok(map)
}

impl ExportedModel {
    /// Loads and validates the model in directory `dir`.
    pub fn load(dir: &Path) -> Result<Self, InferError> {
        let manifest_path = dir.join("manifest.json");
        let weights_path = dir.join("model.safetensors");
        let io = |path: &Path| {
            let path = path.to_owned();
            move |error| InferError::Io { path, error }
        };
        let size = std::fs::metadata(&manifest_path)
            .map_err(io(&manifest_path))?
            .len();
        if size > MAX_MANIFEST_BYTES {
            return Err(InferError::Manifest {
                path: manifest_path,
                message: format!("{size} bytes is too large"),
            });
        }
        let text = std::fs::read(&manifest_path).map_err(io(&manifest_path))?;
        let bytes = std::fs::read(&weights_path).map_err(io(&weights_path))?;
        Self::from_bytes(&text, &bytes, &manifest_path, &weights_path)
    }

    /// Builds a model from the two files' contents; the paths only name them in errors.
    pub fn from_bytes(
        manifest: &[u8],
        weights: &[u8],
        manifest_path: &Path,
        weights_path: &Path,
    ) -> Result<Self, InferError> {
        let manifest: Manifest =
            serde_json::from_slice(manifest).map_err(|e| InferError::Manifest {
                path: manifest_path.to_owned(),
                message: e.to_string(),
            })?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(InferError::Version {
                found: manifest.format_version,
            });
        }
        if manifest.user_ids.is_empty() || manifest.item_ids.is_empty() {
            return Err(InferError::Manifest {
                path: manifest_path.to_owned(),
                message: "no users or no items".into(),
            });
        }
        let users = id_index(&manifest.user_ids, "user", manifest_path)?;
        let items = id_index(&manifest.item_ids, "item", manifest_path)?;
        let mut t = read_tensors(weights, weights_path, &manifest)?;
        let mut take = |name: &str| t.remove(name).expect("validated by read_tensors");
        let named_layers = |prefix: &str, count: usize, take: &mut dyn FnMut(&str) -> Matrix| {
            (0..count)
                .map(|k| Dense {
                    weight: take(&format!("{prefix}.{k}.weight")),
                    bias: take(&format!("{prefix}.{k}.bias")).data,
                })
                .collect::<Vec<_>>()
        };
        let dense_layers = |layers: &[usize], take: &mut dyn FnMut(&str) -> Matrix| {
            named_layers("tower.layers", layers.len() - 1, take)
        };
        let weights = match &manifest.model {
            ModelSpec::Mf { .. } => {
                let (items, items_q) = keep_int8(take("items.weight"), manifest.precision);
                Weights::Mf {
                    users: take("users.weight"),
                    items,
                    items_q,
                }
            }
            ModelSpec::Gmf { .. } => {
                let (items, items_q) = keep_int8(take("items.weight"), manifest.precision);
                Weights::Gmf {
                    users: take("users.weight"),
                    items,
                    items_q,
                    h: take("output.weight").data,
                    b: take("output.bias").data[0],
                }
            }
            ModelSpec::Mlp { layers } => {
                let (u, i) = (take("users.weight"), take("items.weight"));
                let layers = dense_layers(layers, &mut take);
                Weights::Mlp {
                    tower: Tower::new(&u, &i, layers),
                    h: take("output.weight").data,
                    b: take("output.bias").data[0],
                }
            }
            ModelSpec::NeuMf { layers, .. } => {
                let (mu, mi) = (take("mlp_users.weight"), take("mlp_items.weight"));
                let layers = dense_layers(layers, &mut take);
                Weights::NeuMf {
                    users: take("gmf_users.weight"),
                    items: take("gmf_items.weight"),
                    tower: Tower::new(&mu, &mi, layers),
                    h: take("output.weight").data,
                    b: take("output.bias").data[0],
                }
            }
            ModelSpec::AutoRec { item_based, .. } => {
                let (users, items) = (manifest.user_ids.len(), manifest.item_ids.len());
                let (rows, width) = if *item_based {
                    (items, users)
                } else {
                    (users, items)
                };
                let (offsets, columns, values) = read_ratings(weights, weights_path, rows, width)?;
                let (mut seen_users, mut seen_items) = (vec![false; users], vec![false; items]);
                let (mut low, mut high) = (f32::INFINITY, f32::NEG_INFINITY);
                for r in 0..rows {
                    for k in offsets[r]..offsets[r + 1] {
                        let c = columns[k] as usize;
                        let (u, i) = if *item_based { (c, r) } else { (r, c) };
                        seen_users[u] = true;
                        seen_items[i] = true;
                        low = low.min(values[k]);
                        high = high.max(values[k]);
                    }
                }
                if !low.is_finite() {
                    (low, high) = (0.0, 0.0);
                }
                let mut layer = |name: &str| Dense {
                    weight: take(&format!("{name}.weight")),
                    bias: take(&format!("{name}.bias")).data,
                };
                Weights::AutoRec(AutoRecWeights {
                    encoder: layer("encoder"),
                    decoder: layer("decoder"),
                    item_based: *item_based,
                    offsets,
                    columns,
                    values,
                    seen_users,
                    seen_items,
                    low,
                    high,
                })
            }
            ModelSpec::SasRec {
                blocks,
                heads,
                max_len,
                layer_norm_epsilon,
                ..
            }
            | ModelSpec::Bert4Rec {
                blocks,
                heads,
                max_len,
                layer_norm_epsilon,
                ..
            } => {
                let num_items = manifest.item_ids.len();
                let (offsets, history) = read_histories(
                    weights,
                    weights_path,
                    (manifest.user_ids.len(), num_items),
                    true,
                )?;
                let epsilon = *layer_norm_epsilon as f32;
                let norm = |name: &str, take: &mut dyn FnMut(&str) -> Matrix| Norm {
                    gamma: take(&format!("{name}.gamma")).data,
                    beta: take(&format!("{name}.beta")).data,
                    epsilon,
                };
                let dense = |name: &str, take: &mut dyn FnMut(&str) -> Matrix| Dense {
                    weight: take(&format!("{name}.weight")),
                    bias: take(&format!("{name}.bias")).data,
                };
                let blocks = (0..*blocks)
                    .map(|k| {
                        let name = |part: &str| format!("blocks.{k}.{part}");
                        let attention = Attention {
                            query: dense(&name("attention.query"), &mut take),
                            key: dense(&name("attention.key"), &mut take),
                            value: dense(&name("attention.value"), &mut take),
                            output: dense(&name("attention.output"), &mut take),
                            heads: *heads,
                        };
                        Block {
                            attention_norm: norm(&name("attention_norm"), &mut take),
                            attention,
                            feed_forward_norm: norm(&name("feed_forward_norm"), &mut take),
                            feed_forward_in: dense(&name("feed_forward_in"), &mut take),
                            feed_forward_out: dense(&name("feed_forward_out"), &mut take),
                        }
                    })
                    .collect();
                let architecture = match &manifest.model {
                    ModelSpec::SasRec { .. } => Architecture::SasRec {
                        final_norm: norm("final_norm", &mut take),
                    },
                    _ => Architecture::Bert4Rec {
                        embedding_norm: norm("embedding_norm", &mut take),
                        head: dense("head", &mut take),
                        head_norm: norm("head_norm", &mut take),
                        output_bias: take("output_bias").data,
                    },
                };
                Weights::Sequence(SequenceModel {
                    items: take("items.weight"),
                    positions: take("positions.weight"),
                    blocks,
                    architecture,
                    num_items,
                    max_len: *max_len,
                    offsets,
                    history,
                })
            }
            ModelSpec::MultDae { .. } | ModelSpec::MultVae { .. } | ModelSpec::Cdae { .. } => {
                let (offsets, history) = read_histories(
                    weights,
                    weights_path,
                    (manifest.user_ids.len(), manifest.item_ids.len()),
                    false,
                )?;
                let (encoder, decoder, flavour) = match &manifest.model {
                    ModelSpec::Cdae { .. } => {
                        let mut layer = |name: &str| Dense {
                            weight: take(&format!("{name}.weight")),
                            bias: take(&format!("{name}.bias")).data,
                        };
                        let (encoder, decoder) = (layer("encoder"), layer("decoder"));
                        let users = take("users.weight");
                        (vec![encoder], vec![decoder], Flavour::Cdae { users })
                    }
                    ModelSpec::MultDae { hidden } | ModelSpec::MultVae { hidden } => (
                        named_layers("encoder", hidden.len(), &mut take),
                        named_layers("decoder", hidden.len(), &mut take),
                        if matches!(manifest.model, ModelSpec::MultVae { .. }) {
                            Flavour::Vae
                        } else {
                            Flavour::Dae
                        },
                    ),
                    _ => unreachable!("matched above"),
                };
                Weights::Autoencoder(Autoencoder {
                    encoder,
                    decoder,
                    flavour,
                    offsets,
                    history,
                })
            }
        };
        Ok(Self {
            manifest,
            weights,
            users,
            items,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Internal id of an external user id.
    pub fn user_index(&self, user: i64) -> Result<u32, InferError> {
        self.users.get(&user).copied().ok_or(InferError::UnknownId {
            what: "user",
            id: user,
        })
    }

    /// Internal id of an external item id.
    pub fn item_index(&self, item: i64) -> Result<u32, InferError> {
        self.items.get(&item).copied().ok_or(InferError::UnknownId {
            what: "item",
            id: item,
        })
    }

    /// Score of internal (user, item); both must be in range.
    pub fn score_internal(&self, user: u32, item: u32) -> f32 {
        let (u, i) = (user as usize, item as usize);
        let mut h = Vec::new();
        let mut scratch = Vec::new();
        self.score_with(u, i, &mut h, &mut scratch)
    }

    /// The user side of the score, computed once per user: `p_u` for MF, `p_u ⊙ h` for GMF and
    /// NeuMF's GMF part, nothing for MLP.
    fn user_query(&self, u: usize) -> Vec<f32> {
        match &self.weights {
            Weights::Mf { users, .. } => users.row(u).to_vec(),
            Weights::Gmf { users, h: w, .. } | Weights::NeuMf { users, h: w, .. } => {
                users.row(u).iter().zip(w).map(|(p, w)| p * w).collect()
            }
            Weights::Mlp { .. }
            | Weights::Autoencoder(_)
            | Weights::AutoRec(_)
            | Weights::Sequence(_) => Vec::new(),
        }
    }

    /// Score of item `i` for user `u`, whose [`Self::user_query`] is `query`. `h` and `scratch`
    /// are reused buffers for the MLP tower.
    fn score_item(
        &self,
        query: &[f32],
        u: usize,
        i: usize,
        h: &mut Vec<f32>,
        scratch: &mut Vec<f32>,
    ) -> f32 {
        match &self.weights {
            Weights::Mf { items, items_q, .. } => item_dot(items, items_q, query, i),
            Weights::Gmf {
                items, items_q, b, ..
            } => item_dot(items, items_q, query, i) + b,
            Weights::Mlp { tower, h: w, b } => {
                tower.hidden(u, i, h, scratch);
                dot(h, w) + b
            }
            Weights::NeuMf {
                users,
                items,
                tower,
                h: w,
                b,
            } => {
                tower.hidden(u, i, h, scratch);
                dot(query, items.row(i)) + dot(h, &w[users.cols..]) + b
            }
            Weights::AutoRec(ar) => {
                ar.decode(ar.cell(u, i).0, h);
                ar.rating(u, i, h)
            }
            Weights::Autoencoder(ae) => {
                // One item costs a whole decode: callers scoring many items of one user go
                // through `user_scores` (or `score`, which reuses a user's decode).
                ae.user_scores(u, h);
                h[i]
            }
            Weights::Sequence(model) => {
                model.scores(model.user_history(u), h);
                h[i]
            }
        }
    }

    fn score_with(&self, u: usize, i: usize, h: &mut Vec<f32>, scratch: &mut Vec<f32>) -> f32 {
        self.score_item(&self.user_query(u), u, i, h, scratch)
    }

    /// Scores of every item for each internal user of `users`, in item order, written into
    /// `out` (one vector per user).
    fn user_scores(&self, users: &[usize], out: &mut Vec<Vec<f32>>) {
        let n = self.manifest.item_ids.len();
        let queries: Vec<Vec<f32>> = users.iter().map(|&u| self.user_query(u)).collect();
        out.resize_with(users.len(), Vec::new);
        for scores in out.iter_mut() {
            scores.clear();
            scores.resize(n, 0.0);
        }
        match &self.weights {
            // MF and GMF score a whole table against each query: the vectorised kernel, over
            // blocks of rows small enough to stay in cache while every query of the batch
            // reads them (the table itself is streamed from memory once per batch).
            Weights::Mf { items, items_q, .. } | Weights::Gmf { items, items_q, .. } => {
                const ROWS_PER_BLOCK: usize = 1024;
                for start in (0..n).step_by(ROWS_PER_BLOCK) {
                    let end = (start + ROWS_PER_BLOCK).min(n);
                    for (query, scores) in queries.iter().zip(out.iter_mut()) {
                        let cols = query.len();
                        let block = &mut scores[start..end];
                        match items_q {
                            Some(rows) => dot_rows_i8(
                                query,
                                &rows.q[start * cols..end * cols],
                                &rows.scale[start..end],
                                block,
                            ),
                            None => {
                                dot_rows_f32(query, &items.data[start * cols..end * cols], block)
                            }
                        }
                    }
                }
                if let Weights::Gmf { b, .. } = &self.weights {
                    out.iter_mut().flatten().for_each(|s| *s += b);
                }
            }
            Weights::Autoencoder(ae) => {
                for (&u, scores) in users.iter().zip(out.iter_mut()) {
                    ae.user_scores(u, scores);
                }
            }
            Weights::Sequence(model) => {
                for (&u, scores) in users.iter().zip(out.iter_mut()) {
                    model.scores(model.user_history(u), scores);
                }
            }
            Weights::AutoRec(ar) => {
                let mut decoded = Vec::new();
                if ar.item_based {
                    // Each item's row once for the whole batch of users.
                    for i in 0..n {
                        ar.decode(i, &mut decoded);
                        for (&u, scores) in users.iter().zip(out.iter_mut()) {
                            scores[i] = ar.rating(u, i, &decoded);
                        }
                    }
                } else {
                    for (&u, scores) in users.iter().zip(out.iter_mut()) {
                        ar.decode(u, &mut decoded);
                        for (i, s) in scores.iter_mut().enumerate() {
                            *s = ar.rating(u, i, &decoded);
                        }
                    }
                }
            }
            _ => {
                let (mut h, mut scratch) = (Vec::new(), Vec::new());
                for ((&u, query), scores) in users.iter().zip(&queries).zip(out.iter_mut()) {
                    for (i, s) in scores.iter_mut().enumerate() {
                        *s = self.score_item(query, u, i, &mut h, &mut scratch);
                    }
                }
            }
        }
    }

    /// Scores of every item (in internal item order) for internal user `user`, which must be in
    /// range.
    pub fn item_scores_internal(&self, user: u32) -> Vec<f32> {
        let mut out = Vec::new();
        self.user_scores(&[user as usize], &mut out);
        out.remove(0)
    }

    /// Scores of (user, item) pairs given by external ids.
    pub fn score(&self, pairs: &[(i64, i64)]) -> Result<Vec<f32>, InferError> {
        let pairs = pairs
            .iter()
            .map(|&(u, i)| Ok((self.user_index(u)?, self.item_index(i)?)))
            .collect::<Result<Vec<_>, InferError>>()?;
        Ok(self.score_internal_pairs(&pairs))
    }

    /// Scores of (user, item) pairs given by internal ids, which must be in range. Models that
    /// decode a whole row at once (the autoencoders: a user's row; AutoRec: an item's or a
    /// user's) decode each distinct row once, whatever the order of the pairs.
    pub fn score_internal_pairs(&self, pairs: &[(u32, u32)]) -> Vec<f32> {
        let row_of = |u: usize, i: usize| match &self.weights {
            Weights::AutoRec(ar) => Some(ar.cell(u, i).0),
            Weights::Autoencoder(_) | Weights::Sequence(_) => Some(u),
            _ => None,
        };
        let cells: Vec<(usize, usize)> = pairs
            .iter()
            .map(|&(u, i)| (u as usize, i as usize))
            .collect();
        if cells.is_empty() || row_of(0, 0).is_none() {
            let (mut h, mut scratch) = (Vec::new(), Vec::new());
            return cells
                .iter()
                .map(|&(u, i)| self.score_with(u, i, &mut h, &mut scratch))
                .collect();
        }
        let row = |k: usize| row_of(cells[k].0, cells[k].1).expect("a row model");
        let mut order: Vec<usize> = (0..cells.len()).collect();
        order.sort_by_key(|&k| row(k));
        let mut scores = vec![0.0f32; cells.len()];
        let (mut decoded, mut current) = (Vec::new(), None);
        for k in order {
            let (u, i) = cells[k];
            if current != Some(row(k)) {
                match &self.weights {
                    Weights::AutoRec(ar) => ar.decode(row(k), &mut decoded),
                    Weights::Autoencoder(ae) => ae.user_scores(u, &mut decoded),
                    Weights::Sequence(model) => model.scores(model.user_history(u), &mut decoded),
                    _ => unreachable!("row models only"),
                }
                current = Some(row(k));
            }
            scores[k] = match &self.weights {
                Weights::AutoRec(ar) => ar.rating(u, i, &decoded),
                _ => decoded[i],
            };
        }
        scores
    }

    /// The `k` best items for `user`, leaving out `exclude` (external item ids; unknown ones
    /// are ignored). Equal scores are ordered by external id. Items the user already has are
    /// only left out when listed in `exclude` (an autoencoder, which reconstructs its input,
    /// ranks them high).
    pub fn recommend(
        &self,
        user: i64,
        k: usize,
        exclude: &[i64],
    ) -> Result<Vec<Scored>, InferError> {
        Ok(self.recommend_many(&[(user, exclude)], k)?.remove(0))
    }

    /// [`Self::recommend`] for many `(user, exclude)` queries at once. For MF and GMF this
    /// reads the item table once for the whole batch instead of once per user, which is what
    /// bounds a single query's latency on a large catalogue.
    pub fn recommend_many(
        &self,
        queries: &[(i64, &[i64])],
        k: usize,
    ) -> Result<Vec<Vec<Scored>>, InferError> {
        let users = queries
            .iter()
            .map(|&(user, _)| Ok(self.user_index(user)? as usize))
            .collect::<Result<Vec<_>, InferError>>()?;
        let mut scores = Vec::new();
        self.user_scores(&users, &mut scores);
        Ok(queries
            .iter()
            .zip(&mut scores)
            .map(|((_, exclude), scores)| {
                // Excluded items become NaN, which top-k passes over.
                for i in exclude.iter().filter_map(|i| self.items.get(i)) {
                    scores[*i as usize] = f32::NAN;
                }
                top_k_of(scores, &self.manifest.item_ids, k)
            })
            .collect())
    }

    /// The `k` best items for a user given by their item history (external ids; unknown ones
    /// are ignored), leaving out `exclude`: how a history-based model (Mult-DAE, Mult-VAE,
    /// CDAE, SASRec, BERT4Rec) serves a user it was not trained on; CDAE gives such a user a
    /// zero user vector; the sequence models read the history in the order given, oldest first.
    /// Pass the history in `exclude` too to leave those items out. Id-based models answer
    /// [`InferError::Unsupported`].
    pub fn recommend_history(
        &self,
        history: &[i64],
        k: usize,
        exclude: &[i64],
    ) -> Result<Vec<Scored>, InferError> {
        let mut items: Vec<u32> = history
            .iter()
            .filter_map(|i| self.items.get(i).copied())
            .collect();
        let mut scores = Vec::new();
        match &self.weights {
            Weights::Autoencoder(ae) => {
                items.sort_unstable();
                items.dedup();
                ae.scores(&items, None, &mut scores);
            }
            // In the order given: the latest item last.
            Weights::Sequence(model) => model.scores(&items, &mut scores),
            _ => {
                return Err(InferError::Unsupported(format!(
                    "{:?} models score known users by id: use recommend(user)",
                    self.manifest.model
                )));
            }
        }
        for i in exclude.iter().filter_map(|i| self.items.get(i)) {
            scores[*i as usize] = f32::NAN;
        }
        Ok(top_k_of(&scores, &self.manifest.item_ids, k))
    }

    /// The `k` users most likely to want `item` (campaign targeting). For an autoencoder this
    /// decodes every user's row once.
    pub fn audience(&self, item: i64, k: usize) -> Result<Vec<Scored>, InferError> {
        let i = self.item_index(item)? as usize;
        if let Weights::AutoRec(ar) = &self.weights
            && ar.item_based
        {
            // The item's row holds every user's predicted rating.
            let mut decoded = Vec::new();
            ar.decode(i, &mut decoded);
            let scores = (0..self.manifest.user_ids.len()).map(|u| Scored {
                id: self.manifest.user_ids[u],
                score: ar.rating(u, i, &decoded),
            });
            return Ok(top_k(scores, k));
        }
        let (mut h, mut scratch) = (Vec::new(), Vec::new());
        let scores = (0..self.manifest.user_ids.len()).map(|u| Scored {
            id: self.manifest.user_ids[u],
            score: self.score_with(u, i, &mut h, &mut scratch),
        });
        Ok(top_k(scores, k))
    }
}

/// The `k` best of `scores` (NaN: left out), named by `ids`, best first, ties by id ascending.
fn top_k_of(scores: &[f32], ids: &[i64], k: usize) -> Vec<Scored> {
    let mut best = TopK::new(k);
    for (i, &score) in scores.iter().enumerate() {
        // Most items lose against the current k-th best: one comparison, nothing built.
        if score >= best.threshold {
            best.push(Scored { id: ids[i], score });
        }
    }
    best.items
}

/// Keeps the `k` highest scores (ties by id ascending), best first, with a bounded heap-free
/// insertion list: k is small in serving.
fn top_k(scores: impl Iterator<Item = Scored>, k: usize) -> Vec<Scored> {
    let mut best = TopK::new(k);
    scores.for_each(|s| best.push(s));
    best.items
}

/// The best `k` seen so far, best first.
struct TopK {
    k: usize,
    items: Vec<Scored>,
    /// Scores below this cannot enter (the k-th best's score once there are k).
    threshold: f32,
}

impl TopK {
    fn new(k: usize) -> Self {
        Self {
            k,
            items: Vec::with_capacity(k + 1),
            threshold: f32::NEG_INFINITY,
        }
    }

    fn push(&mut self, s: Scored) {
        let better =
            |a: &Scored, b: &Scored| a.score > b.score || (a.score == b.score && a.id < b.id);
        if self.k == 0 || s.score.is_nan() {
            return;
        }
        if self.items.len() == self.k && !better(&s, &self.items[self.k - 1]) {
            return;
        }
        let at = self.items.partition_point(|b| better(b, &s));
        self.items.insert(at, s);
        self.items.truncate(self.k);
        if self.items.len() == self.k {
            self.threshold = self.items[self.k - 1].score;
        }
    }
}
