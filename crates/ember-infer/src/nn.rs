//! The layers the families are built from, in plain f32 Rust, each with its loader: matrices
//! (f32, or int8 rows kept quantised), dense layers, layer norm, multi-head attention and the
//! activations. They compute what the training side's burn modules compute at evaluation, in
//! the same order of operations, so that exported scores equal the training side's.

use crate::InferError;
use crate::kernels::{dot, dot_rows_f32, dot_rows_i8};
use crate::source::{RowData, TensorSource};

/// A `[rows, cols]` f32 matrix, row-major.
#[derive(Debug, Clone)]
pub(crate) struct Matrix {
    pub(crate) cols: usize,
    pub(crate) data: Vec<f32>,
}

impl Matrix {
    /// Takes the `[rows, cols]` matrix `name`.
    pub(crate) fn load(
        src: &TensorSource<'_>,
        name: &str,
        rows: usize,
        cols: usize,
    ) -> Result<Self, InferError> {
        Ok(Self {
            cols,
            data: src.take(name, &[rows, cols])?,
        })
    }

    /// Row `r`.
    pub(crate) fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Rows `start..end`, as one slice.
    pub(crate) fn rows(&self, start: usize, end: usize) -> &[f32] {
        &self.data[start * self.cols..end * self.cols]
    }
}

/// The rows of a table scored by dot products (the item embeddings of MF, GMF, LightGCN). An
/// int8 model keeps them as int8 with a scale per row, as stored, so that scoring every item
/// reads a quarter of the bytes (top-k over a large catalogue is memory-bound).
#[derive(Debug, Clone)]
pub(crate) enum Rows {
    /// f32 rows.
    F32(Matrix),
    /// int8 rows: `value = q × scale[row]`.
    Int8 {
        cols: usize,
        q: Vec<i8>,
        scale: Vec<f32>,
    },
}

impl Rows {
    /// Takes the `[rows, cols]` matrix `name`, keeping int8 rows quantised.
    pub(crate) fn load(
        src: &TensorSource<'_>,
        name: &str,
        rows: usize,
        cols: usize,
    ) -> Result<Self, InferError> {
        Ok(match src.take_rows(name, rows, cols)? {
            RowData::F32(data) => Rows::F32(Matrix { cols, data }),
            RowData::Int8 { q, scale } => Rows::Int8 { cols, q, scale },
        })
    }

    /// Row `r`, decoded to f32.
    pub(crate) fn row_vec(&self, r: usize) -> Vec<f32> {
        match self {
            Rows::F32(m) => m.row(r).to_vec(),
            Rows::Int8 { cols, q, scale } => q[r * cols..(r + 1) * cols]
                .iter()
                .map(|&v| v as f32 * scale[r])
                .collect(),
        }
    }

    /// `query · row(r)`.
    pub(crate) fn dot(&self, query: &[f32], r: usize) -> f32 {
        match self {
            Rows::F32(m) => dot(query, m.row(r)),
            Rows::Int8 { .. } => {
                let mut out = [0.0f32];
                self.dot_block(query, r, r + 1, &mut out);
                out[0]
            }
        }
    }

    /// `out[k] = query · row(start + k)` for the rows `start..end`, with the vectorised kernel.
    pub(crate) fn dot_block(&self, query: &[f32], start: usize, end: usize, out: &mut [f32]) {
        match self {
            Rows::F32(m) => dot_rows_f32(query, m.rows(start, end), out),
            Rows::Int8 { cols, q, scale } => {
                dot_rows_i8(query, &q[start * cols..end * cols], &scale[start..end], out)
            }
        }
    }
}

/// A dense layer `x W + b` with `W` stored `[inputs, outputs]` as `weight` and `b` as `bias`.
#[derive(Debug, Clone)]
pub(crate) struct Dense {
    pub(crate) weight: Matrix,
    pub(crate) bias: Vec<f32>,
}

impl Dense {
    /// Takes `weight` `[inputs, outputs]` and `bias` `[outputs]` under `src`.
    pub(crate) fn load(
        src: &TensorSource<'_>,
        inputs: usize,
        outputs: usize,
    ) -> Result<Self, InferError> {
        Ok(Self {
            weight: Matrix::load(src, "weight", inputs, outputs)?,
            bias: src.vector("bias", outputs)?,
        })
    }

    /// `out = x W + b`.
    ///
    /// # Shapes
    /// - x: `[inputs]`, out: `[outputs]`
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

    /// Outputs.
    pub(crate) fn outputs(&self) -> usize {
        self.bias.len()
    }
}

/// A layer norm over one vector: `γ ⊙ (x − mean) / √(var + ε) + β`.
#[derive(Debug, Clone)]
pub(crate) struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    epsilon: f32,
}

impl LayerNorm {
    /// Takes `gamma` and `beta` `[size]` under `src`.
    pub(crate) fn load(
        src: &TensorSource<'_>,
        size: usize,
        epsilon: f64,
    ) -> Result<Self, InferError> {
        Ok(Self {
            gamma: src.vector("gamma", size)?,
            beta: src.vector("beta", size)?,
            epsilon: epsilon as f32,
        })
    }

    /// Normalises `x` in place.
    pub(crate) fn apply(&self, x: &mut [f32]) {
        let n = x.len() as f32;
        let mean = x.iter().sum::<f32>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let scale = 1.0 / (var + self.epsilon).sqrt();
        for ((v, g), b) in x.iter_mut().zip(&self.gamma).zip(&self.beta) {
            *v = (*v - mean) * scale * g + b;
        }
    }
}

/// Multi-head scaled dot-product attention (Vaswani et al. 2017, eq. 1): `query`, `key`,
/// `value` and `output` projections, each `[hidden, hidden]`.
#[derive(Debug, Clone)]
pub(crate) struct Attention {
    query: Dense,
    key: Dense,
    value: Dense,
    output: Dense,
    heads: usize,
}

impl Attention {
    /// Takes the four projections under `src`.
    pub(crate) fn load(
        src: &TensorSource<'_>,
        hidden: usize,
        heads: usize,
    ) -> Result<Self, InferError> {
        Ok(Self {
            query: Dense::load(&src.pp("query"), hidden, hidden)?,
            key: Dense::load(&src.pp("key"), hidden, hidden)?,
            value: Dense::load(&src.pp("value"), hidden, hidden)?,
            output: Dense::load(&src.pp("output"), hidden, hidden)?,
            heads,
        })
    }

    /// Attention of each query row over the key/value rows (`causal`: only rows up to its own).
    /// With `last_weights`, the last query row's attention weights, averaged over the heads
    /// (`(1/H) Σ_h α_h(last, j)`), are added to it (which the caller sizes to the keys).
    ///
    /// # Shapes
    /// - queries: `[n, hidden]`, keys: `[m, hidden]` (`m ≥ n` when causal)
    /// - output: `[n, hidden]`; last_weights: `[m]`
    pub(crate) fn forward(
        &self,
        queries: &[Vec<f32>],
        keys: &[Vec<f32>],
        causal: bool,
        mut last_weights: Option<&mut Vec<f32>>,
    ) -> Vec<Vec<f32>> {
        let project = |layer: &Dense, rows: &[Vec<f32>]| -> Vec<Vec<f32>> {
            rows.iter()
                .map(|x| {
                    let mut out = Vec::new();
                    layer.apply(x, &mut out);
                    out
                })
                .collect()
        };
        let (q, k, v) = (
            project(&self.query, queries),
            project(&self.key, keys),
            project(&self.value, keys),
        );
        let hidden = self.query.outputs();
        let d = hidden / self.heads;
        let scale = 1.0 / (d as f32).sqrt();
        let mut contexts = Vec::with_capacity(q.len());
        for (t, qt) in q.iter().enumerate() {
            let visible = if causal { t + 1 } else { k.len() };
            let mut context = vec![0.0f32; hidden];
            for h in 0..self.heads {
                let part = h * d..(h + 1) * d;
                let scores: Vec<f32> = k[..visible]
                    .iter()
                    .map(|kj| dot(&qt[part.clone()], &kj[part.clone()]) * scale)
                    .collect();
                let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let weights: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f32 = weights.iter().sum();
                if t + 1 == q.len()
                    && let Some(last) = last_weights.as_deref_mut()
                {
                    for (l, w) in last.iter_mut().zip(&weights) {
                        *l += w / total / self.heads as f32;
                    }
                }
                for (w, vj) in weights.iter().zip(&v) {
                    for (c, x) in context[part.clone()].iter_mut().zip(&vj[part.clone()]) {
                        *c += w / total * x;
                    }
                }
            }
            let mut out = Vec::new();
            self.output.apply(&context, &mut out);
            contexts.push(out);
        }
        contexts
    }
}

/// `x = max(x, 0)`.
pub(crate) fn relu(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// GELU with the exact error function, as burn computes it.
pub(crate) fn gelu(x: &mut [f32]) {
    x.iter_mut()
        .for_each(|v| *v = 0.5 * *v * (1.0 + libm::erff(*v / std::f32::consts::SQRT_2)));
}

/// The logistic function `1 / (1 + e^(−x))`.
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `x = tanh(x)`.
pub(crate) fn tanh(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = v.tanh());
}

/// `x += y`.
pub(crate) fn add(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}
