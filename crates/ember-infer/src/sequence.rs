//! SASRec and BERT4Rec in plain Rust, computed as the training side does at evaluation (no
//! dropout). Padding never enters: attention there never reads a padded position and padded
//! positions carry nothing to the real ones, so only the real tokens of a window are computed.

use crate::kernels::{dot, dot_rows_f32};
use crate::scorer::{Dense, Matrix};

/// A layer norm over one vector.
#[derive(Debug, Clone)]
pub(crate) struct Norm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub epsilon: f32,
}

impl Norm {
    fn apply(&self, x: &mut [f32]) {
        let n = x.len() as f32;
        let mean = x.iter().sum::<f32>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let scale = 1.0 / (var + self.epsilon).sqrt();
        for ((v, g), b) in x.iter_mut().zip(&self.gamma).zip(&self.beta) {
            *v = (*v - mean) * scale * g + b;
        }
    }
}

/// Multi-head attention: query, key, value and output projections.
#[derive(Debug, Clone)]
pub(crate) struct Attention {
    pub query: Dense,
    pub key: Dense,
    pub value: Dense,
    pub output: Dense,
    pub heads: usize,
}

impl Attention {
    /// Attention of each query row over the key/value rows (`causal`: only rows up to its own).
    fn forward(&self, queries: &[Vec<f32>], keys: &[Vec<f32>], causal: bool) -> Vec<Vec<f32>> {
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
        let hidden = self.query.bias.len();
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

/// One transformer block.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub attention_norm: Norm,
    pub attention: Attention,
    pub feed_forward_norm: Norm,
    pub feed_forward_in: Dense,
    pub feed_forward_out: Dense,
}

/// What sets the two models apart.
#[derive(Debug, Clone)]
pub(crate) enum Architecture {
    /// SASRec: pre-norm causal blocks, a final norm, item embeddings as the output layer.
    SasRec { final_norm: Norm },
    /// BERT4Rec: an embedding norm, post-norm bidirectional blocks, an output head and bias.
    Bert4Rec {
        embedding_norm: Norm,
        head: Dense,
        head_norm: Norm,
        output_bias: Vec<f32>,
    },
}

/// A sequence model with every user's stored training sequence.
#[derive(Debug, Clone)]
pub(crate) struct SequenceModel {
    /// Row 0 pads, row `i + 1` is item `i`, BERT4Rec's last row is the mask token.
    pub items: Matrix,
    pub positions: Matrix,
    pub blocks: Vec<Block>,
    pub architecture: Architecture,
    pub num_items: usize,
    pub max_len: usize,
    /// User `u`'s items, in time order: `history[offsets[u]..offsets[u + 1]]`.
    pub offsets: Vec<usize>,
    pub history: Vec<u32>,
}

fn relu(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// GELU with the exact error function, as burn computes it.
fn gelu(x: &mut [f32]) {
    x.iter_mut()
        .for_each(|v| *v = 0.5 * *v * (1.0 + libm::erff(*v / std::f32::consts::SQRT_2)));
}

fn add(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}

impl SequenceModel {
    /// User `u`'s stored sequence.
    pub fn user_history(&self, u: usize) -> &[u32] {
        &self.history[self.offsets[u]..self.offsets[u + 1]]
    }

    /// Logits of every item for a user whose items, in time order, are `history`.
    pub fn scores(&self, history: &[u32], out: &mut Vec<f32>) {
        let bert = matches!(self.architecture, Architecture::Bert4Rec { .. });
        // The window's real tokens (row indices of `items`) and their positions.
        let kept = self.max_len - bert as usize;
        let mut tokens: Vec<usize> = history[history.len().saturating_sub(kept)..]
            .iter()
            .map(|&i| i as usize + 1)
            .collect();
        if bert {
            tokens.push(self.num_items + 1);
        }
        let first_position = self.max_len - tokens.len();
        let hidden = self.items.cols;
        let mut x: Vec<Vec<f32>> = tokens
            .iter()
            .enumerate()
            .map(|(j, &token)| {
                let scale = if bert { 1.0 } else { (hidden as f32).sqrt() };
                let mut v: Vec<f32> = self.items.row(token).iter().map(|e| e * scale).collect();
                add(&mut v, self.positions.row(first_position + j));
                if let Architecture::Bert4Rec { embedding_norm, .. } = &self.architecture {
                    embedding_norm.apply(&mut v);
                }
                v
            })
            .collect();
        let mut inner = Vec::new();
        let mut ff = Vec::new();
        let mut feed_forward = |block: &Block, v: &mut Vec<f32>, gelu_act: bool| {
            block.feed_forward_in.apply(v, &mut inner);
            if gelu_act {
                gelu(&mut inner)
            } else {
                relu(&mut inner)
            }
            block.feed_forward_out.apply(&inner, &mut ff);
            add(v, &ff);
        };
        for block in &self.blocks {
            if bert {
                let attended = block.attention.forward(&x, &x, false);
                for (v, a) in x.iter_mut().zip(&attended) {
                    add(v, a);
                    block.attention_norm.apply(v);
                    feed_forward(block, v, true);
                    block.feed_forward_norm.apply(v);
                }
            } else {
                let queries: Vec<Vec<f32>> = x
                    .iter()
                    .map(|v| {
                        let mut q = v.clone();
                        block.attention_norm.apply(&mut q);
                        q
                    })
                    .collect();
                let attended = block.attention.forward(&queries, &x, true);
                for ((v, q), a) in x.iter_mut().zip(queries).zip(&attended) {
                    *v = q;
                    add(v, a);
                    block.feed_forward_norm.apply(v);
                    feed_forward(block, v, false);
                }
            }
        }
        // No items at all (SASRec only): the state of a padded position, zero.
        let mut last = x.pop().unwrap_or_else(|| vec![0.0; hidden]);
        out.clear();
        out.resize(self.num_items, 0.0);
        let table = &self.items.data[hidden..(self.num_items + 1) * hidden];
        match &self.architecture {
            Architecture::SasRec { final_norm } => {
                final_norm.apply(&mut last);
                dot_rows_f32(&last, table, out);
            }
            Architecture::Bert4Rec {
                head,
                head_norm,
                output_bias,
                ..
            } => {
                let mut projected = Vec::new();
                head.apply(&last, &mut projected);
                gelu(&mut projected);
                head_norm.apply(&mut projected);
                dot_rows_f32(&projected, table, out);
                add(out, output_bias);
            }
        }
    }
}
