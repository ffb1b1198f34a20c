//! Loading an exported model and answering queries.

use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::Path;

use crate::format::{FORMAT_VERSION, Manifest, ModelSpec, expected_tensors};
use crate::quant::f16_to_f32;
use crate::{InferError, Precision};

/// Manifests larger than this are refused before parsing (a model's id maps are far smaller).
const MAX_MANIFEST_BYTES: u64 = 1 << 30;

/// A `[rows, cols]` f32 matrix.
#[derive(Debug, Clone)]
struct Matrix {
    cols: usize,
    data: Vec<f32>,
}

impl Matrix {
    fn row(&self, r: usize) -> &[f32] {
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

    /// `query · row(r)`, with eight independent accumulators.
    fn dot(&self, query: &[f32], r: usize) -> f32 {
        let row = &self.q[r * self.cols..(r + 1) * self.cols];
        let mut acc = [0.0f32; 8];
        let (q8, q_rest) = query.split_at(query.len() / 8 * 8);
        let (r8, r_rest) = row.split_at(q8.len());
        for (x, y) in q8.chunks_exact(8).zip(r8.chunks_exact(8)) {
            for j in 0..8 {
                acc[j] += x[j] * y[j] as f32;
            }
        }
        let rest: f32 = q_rest.iter().zip(r_rest).map(|(x, y)| x * *y as f32).sum();
        (pairwise_sum(&acc) + rest) * self.scale[r]
    }
}

/// A dense layer `x W + b` with `W` stored `[inputs, outputs]`.
#[derive(Debug, Clone)]
struct Dense {
    weight: Matrix,
    bias: Vec<f32>,
}

impl Dense {
    fn apply(&self, x: &[f32], out: &mut Vec<f32>) {
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

/// Sums eight lanes as a tree (depth 3, not a chain of 8), which keeps per-row overhead low.
#[inline]
fn pairwise_sum(acc: &[f32; 8]) -> f32 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// Dot product with eight independent accumulators, so that the compiler vectorises it.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (a8, a_rest) = a.split_at(a.len() / 8 * 8);
    let (b8, b_rest) = b.split_at(a8.len());
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    pairwise_sum(&acc) + a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum::<f32>()
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
    for name in file.names() {
        if !stored.iter().any(|(n, _, _)| n == name) {
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
        let dense_layers = |layers: &[usize], take: &mut dyn FnMut(&str) -> Matrix| {
            (0..layers.len() - 1)
                .map(|k| Dense {
                    weight: take(&format!("tower.layers.{k}.weight")),
                    bias: take(&format!("tower.layers.{k}.bias")).data,
                })
                .collect::<Vec<_>>()
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
            Weights::Mlp { .. } => Vec::new(),
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
        }
    }

    fn score_with(&self, u: usize, i: usize, h: &mut Vec<f32>, scratch: &mut Vec<f32>) -> f32 {
        self.score_item(&self.user_query(u), u, i, h, scratch)
    }

    /// Scores of every item for internal user `u`, in item order.
    fn user_scores(&self, u: usize) -> Vec<f32> {
        let query = self.user_query(u);
        let (mut h, mut scratch) = (Vec::new(), Vec::new());
        (0..self.manifest.item_ids.len())
            .map(|i| self.score_item(&query, u, i, &mut h, &mut scratch))
            .collect()
    }

    /// Scores of (user, item) pairs given by external ids.
    pub fn score(&self, pairs: &[(i64, i64)]) -> Result<Vec<f32>, InferError> {
        let (mut h, mut scratch) = (Vec::new(), Vec::new());
        pairs
            .iter()
            .map(|&(u, i)| {
                let (u, i) = (self.user_index(u)?, self.item_index(i)?);
                Ok(self.score_with(u as usize, i as usize, &mut h, &mut scratch))
            })
            .collect()
    }

    /// The `k` best items for `user`, leaving out `exclude` (external item ids; unknown ones
    /// are ignored). Equal scores are ordered by external id.
    pub fn recommend(
        &self,
        user: i64,
        k: usize,
        exclude: &[i64],
    ) -> Result<Vec<Scored>, InferError> {
        let u = self.user_index(user)? as usize;
        let mut skip: Vec<u32> = exclude
            .iter()
            .filter_map(|i| self.items.get(i).copied())
            .collect();
        skip.sort_unstable();
        let ids = &self.manifest.item_ids;
        let candidates = self
            .user_scores(u)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| skip.is_empty() || skip.binary_search(&(*i as u32)).is_err())
            .map(|(i, score)| Scored { id: ids[i], score });
        Ok(top_k(candidates, k))
    }

    /// The `k` users most likely to want `item` (campaign targeting).
    pub fn audience(&self, item: i64, k: usize) -> Result<Vec<Scored>, InferError> {
        let i = self.item_index(item)? as usize;
        let (mut h, mut scratch) = (Vec::new(), Vec::new());
        let scores = (0..self.manifest.user_ids.len()).map(|u| Scored {
            id: self.manifest.user_ids[u],
            score: self.score_with(u, i, &mut h, &mut scratch),
        });
        Ok(top_k(scores, k))
    }
}

/// Keeps the `k` highest scores (ties by id ascending), best first, with a bounded heap-free
/// insertion list: k is small in serving.
fn top_k(scores: impl Iterator<Item = Scored>, k: usize) -> Vec<Scored> {
    let better = |a: &Scored, b: &Scored| a.score > b.score || (a.score == b.score && a.id < b.id);
    let mut best: Vec<Scored> = Vec::with_capacity(k + 1);
    if k == 0 {
        return best;
    }
    for s in scores {
        if s.score.is_nan() {
            continue;
        }
        if best.len() == k && !better(&s, &best[k - 1]) {
            continue;
        }
        let at = best.partition_point(|b| better(b, &s));
        best.insert(at, s);
        best.truncate(k);
    }
    best
}
