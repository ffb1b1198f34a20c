//! The transformer sequence models, computed as the training side does at evaluation (no
//! dropout):
//!
//! - SASRec (Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018): causal
//!   self-attention over the user's last `max_len` items (embeddings scaled by √hidden, plus
//!   positions); the last position's state scores every item by a dot product with the item
//!   embeddings. Per block: `q = LN(x)`, `x = q + attention(q, x, x)`, `x = LN(x)`,
//!   `x = x + W₂ ReLU(W₁ x)`; a final layer norm.
//! - BERT4Rec (Sun et al., "BERT4Rec: Sequential Recommendation with Bidirectional Encoder
//!   Representations from Transformer", CIKM 2019): a bidirectional post-norm encoder over the
//!   user's last `max_len - 1` items followed by the mask token; the mask position's state,
//!   through the head `LN(GELU(W h))`, scores every item against the item embeddings plus
//!   `output_bias`. Per block: `x = LN(x + attention(x, x, x))`, `x = LN(x + W₂ GELU(W₁ x))`.
//!
//! A user is read as a window of tokens ([`ember_spec::tokens`]). Padding never enters:
//! attention never reads a padded position and padded positions carry nothing to the real
//! ones, so only the real tokens of a window are computed. The export stores each user's
//! sequence (time order, repeats kept), so the users of the training data are scored from it.
//!
//! Explanations are the final position's attention (SASRec: the latest item's; BERT4Rec: the
//! mask token's) over the window's items: in each block `b`, the attention weights averaged
//! over the `H` heads, then averaged over the `B` blocks, `w_j = (1/B) Σ_b (1/H) Σ_h
//! α_{b,h}(last, j)`; an item at several positions gets the sum of their weights, and
//! BERT4Rec's weight on the mask token itself is left out. In later blocks a position's state
//! mixes the positions it attended to, so this is what the last position reads, not a causal
//! attribution (no attention rollout); it is the same for every recommended item of a query.
//! User vectors: the final position's state (SASRec after the final layer norm; BERT4Rec the
//! mask position's output of the last block).

use ember_spec::{TransformerSpec, tokens};

use super::{ById, Family, Subject, Unexplained};
use crate::kernels::dot_rows_f32;
use crate::nn::{Attention, Dense, LayerNorm, Matrix, add, gelu, relu};
use crate::source::{SparseRows, TensorSource};
use crate::{InferError, ScoreScale};

/// Which of the two models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Variant {
    /// SASRec.
    SasRec,
    /// BERT4Rec.
    Bert4Rec,
}

/// One transformer block.
#[derive(Debug, Clone)]
struct Block {
    attention_norm: LayerNorm,
    attention: Attention,
    feed_forward_norm: LayerNorm,
    feed_forward_in: Dense,
    feed_forward_out: Dense,
}

impl Block {
    /// `attention_norm`, `attention.{query,key,value,output}`, `feed_forward_norm`,
    /// `feed_forward_in` `[hidden, ff]`, `feed_forward_out` `[ff, hidden]`.
    fn load(src: &TensorSource<'_>, spec: &TransformerSpec, ff: usize) -> Result<Self, InferError> {
        let (hidden, epsilon) = (spec.hidden, spec.layer_norm_epsilon);
        Ok(Self {
            attention_norm: LayerNorm::load(&src.pp("attention_norm"), hidden, epsilon)?,
            attention: Attention::load(&src.pp("attention"), hidden, spec.heads)?,
            feed_forward_norm: LayerNorm::load(&src.pp("feed_forward_norm"), hidden, epsilon)?,
            feed_forward_in: Dense::load(&src.pp("feed_forward_in"), hidden, ff)?,
            feed_forward_out: Dense::load(&src.pp("feed_forward_out"), ff, hidden)?,
        })
    }
}

/// What sets the two models apart.
#[derive(Debug, Clone)]
enum Architecture {
    /// SASRec: pre-norm causal blocks, a final norm, item embeddings as the output layer.
    SasRec { final_norm: LayerNorm },
    /// BERT4Rec: an embedding norm, post-norm bidirectional blocks, an output head and bias.
    Bert4Rec {
        embedding_norm: LayerNorm,
        head: Dense,
        head_norm: LayerNorm,
        output_bias: Vec<f32>,
    },
}

/// A transformer sequence model with every user's stored sequence.
#[derive(Debug, Clone)]
pub(super) struct Transformer {
    /// One row per token ([`tokens`]): padding, the items, BERT4Rec's mask.
    items: Matrix,
    positions: Matrix,
    blocks: Vec<Block>,
    architecture: Architecture,
    num_items: usize,
    max_len: usize,
    /// Each user's items, in time order.
    history: SparseRows,
}

impl Transformer {
    /// `items.weight` (a row per token), `positions.weight` `[max_len, hidden]`, `blocks.k`,
    /// and each model's own layers.
    pub(super) fn load(
        spec: &TransformerSpec,
        variant: Variant,
        src: &TensorSource<'_>,
    ) -> Result<Self, InferError> {
        let bert = variant == Variant::Bert4Rec;
        let (hidden, epsilon, num_items) = (spec.hidden, spec.layer_norm_epsilon, src.items());
        // The spec's validation checked that 4 × hidden fits.
        let ff = if bert { 4 * hidden } else { hidden };
        let items = Matrix::load(
            src,
            "items.weight",
            tokens::table_rows(num_items, bert),
            hidden,
        )?;
        let positions = Matrix::load(src, "positions.weight", spec.max_len, hidden)?;
        let embedding_norm = bert
            .then(|| LayerNorm::load(&src.pp("embedding_norm"), hidden, epsilon))
            .transpose()?;
        let blocks = (0..spec.blocks)
            .map(|k| Block::load(&src.pp("blocks").pp(k), spec, ff))
            .collect::<Result<_, _>>()?;
        let architecture = match embedding_norm {
            Some(embedding_norm) => Architecture::Bert4Rec {
                embedding_norm,
                head: Dense::load(&src.pp("head"), hidden, hidden)?,
                head_norm: LayerNorm::load(&src.pp("head_norm"), hidden, epsilon)?,
                output_bias: src.vector("output_bias", num_items)?,
            },
            None => Architecture::SasRec {
                final_norm: LayerNorm::load(&src.pp("final_norm"), hidden, epsilon)?,
            },
        };
        Ok(Self {
            items,
            positions,
            blocks,
            architecture,
            num_items,
            max_len: spec.max_len,
            history: src.user_items()?,
        })
    }

    /// The final position's state for a user whose items, in time order, are `history`
    /// (SASRec: after the final layer norm, what scores the items; BERT4Rec: the mask
    /// position's output of the last block, the head's input). With `attention`, the final
    /// position's attention weights over the window's real tokens, averaged over heads and
    /// blocks, and the item at each of those positions (BERT4Rec's mask left out).
    fn encode(&self, history: &[u32], attention: Option<&mut Vec<(u32, f32)>>) -> Vec<f32> {
        let bert = matches!(self.architecture, Architecture::Bert4Rec { .. });
        let mask = bert.then(|| tokens::mask(self.num_items));
        let window = tokens::scoring_window(history, self.max_len, mask);
        let hidden = self.items.cols;
        let scale = if bert { 1.0 } else { (hidden as f32).sqrt() };
        let real: Vec<(usize, i32)> = window
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, token)| token != tokens::PAD)
            .collect();
        // The real tokens of the window, each with its position.
        let mut x: Vec<Vec<f32>> = real
            .iter()
            .map(|&(position, token)| {
                let mut v: Vec<f32> = self
                    .items
                    .row(token as usize)
                    .iter()
                    .map(|e| e * scale)
                    .collect();
                add(&mut v, self.positions.row(position));
                if let Architecture::Bert4Rec { embedding_norm, .. } = &self.architecture {
                    embedding_norm.apply(&mut v);
                }
                v
            })
            .collect();
        let mut weights = attention.is_some().then(|| vec![0.0f32; x.len()]);
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
                let attended = block.attention.forward(&x, &x, false, weights.as_mut());
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
                let attended = block
                    .attention
                    .forward(&queries, &x, true, weights.as_mut());
                for ((v, q), a) in x.iter_mut().zip(queries).zip(&attended) {
                    *v = q;
                    add(v, a);
                    block.feed_forward_norm.apply(v);
                    feed_forward(block, v, false);
                }
            }
        }
        if let (Some(out), Some(weights)) = (attention, weights) {
            let blocks = self.blocks.len() as f32;
            out.clear();
            out.extend(
                real.iter()
                    .zip(weights)
                    .filter(|&(&(_, token), _)| Some(token) != mask)
                    .map(|(&(_, token), w)| (tokens::item_of(token), w / blocks)),
            );
        }
        // No items at all (SASRec only): the state of a padded position, zero.
        let mut last = x.pop().unwrap_or_else(|| vec![0.0; hidden]);
        if let Architecture::SasRec { final_norm } = &self.architecture {
            final_norm.apply(&mut last);
        }
        last
    }

    /// Logits of every item for a user whose items, in time order, are `history`.
    fn scores(&self, history: &[u32], out: &mut Vec<f32>) {
        let last = self.encode(history, None);
        out.clear();
        out.resize(self.num_items, 0.0);
        // The output table: the items' rows, without padding and mask.
        let first = tokens::item(0) as usize;
        let table = self.items.rows(first, first + self.num_items);
        match &self.architecture {
            Architecture::SasRec { .. } => dot_rows_f32(&last, table, out),
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

    /// The sequence of a subject: a user's stored one, or the history given.
    fn sequence<'a>(&'a self, subject: Subject<'a>) -> &'a [u32] {
        match subject {
            Subject::User { user, .. } => self.history.row(user),
            Subject::History(items) => items,
        }
    }
}

impl Family for Transformer {
    fn user_row(&self, u: usize, out: &mut Vec<f32>) {
        self.scores(self.history.row(u), out)
    }

    /// The items in the order given, the latest last.
    fn history_row(&self, items: &[u32], out: &mut Vec<f32>) -> Result<(), ById> {
        self.scores(items, out);
        Ok(())
    }

    /// The final position's attention over the window, the same for every target: an item
    /// at several positions gets the sum of their weights.
    fn explain(
        &self,
        subject: Subject<'_>,
        targets: &[usize],
    ) -> Result<Vec<Vec<(u32, f32)>>, Unexplained> {
        let mut attention = Vec::new();
        self.encode(self.sequence(subject), Some(&mut attention));
        attention.sort_by_key(|&(item, _)| item);
        let mut merged: Vec<(u32, f32)> = Vec::with_capacity(attention.len());
        for (item, w) in attention {
            match merged.last_mut() {
                Some((last, total)) if *last == item => *total += w,
                _ => merged.push((item, w)),
            }
        }
        Ok(targets
            .iter()
            .map(|&t| {
                merged
                    .iter()
                    .copied()
                    .filter(|&(i, _)| i as usize != t)
                    .collect()
            })
            .collect())
    }

    fn user_vector(&self, user: usize) -> Result<Vec<f32>, InferError> {
        Ok(self.encode(self.history.row(user), None))
    }

    fn score_scale(&self) -> ScoreScale {
        ScoreScale::NextItemLogits
    }
}
