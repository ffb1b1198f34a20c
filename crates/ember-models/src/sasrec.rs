//! SASRec (Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018).
//!
//! A window of the user's last `max_len` items (item embeddings scaled by √hidden, plus learned
//! position embeddings, dropout) goes through `blocks` causal self-attention blocks; the hidden
//! state at position `t` scores candidates for the item at `t + 1` by a dot product with their
//! item embeddings (shared between input and output). Each block, as in the paper's code:
//! `q = LN(x)`, `x = q + attention(q, x, x)`, `x = LN(x)`, `x = x + FFN(x)` with a point-wise
//! ReLU feed-forward of width `hidden`, then padded positions zeroed; a final layer norm ends
//! the stack. Attention is causal and never attends to padding.

use burn::module::{Module, Param};
use burn::nn::{Embedding, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::relu;
use ember_spec::{ModelSpec, TransformerSpec, tokens};
use serde::{Deserialize, Serialize};

use crate::attention::Attention;
use crate::config::{ModelError, check_dropout};
use crate::dropout::Dropout;
use crate::layers::embedding;
use crate::sequence::{
    SequenceLoss, SequenceTask, at_targets, attention_mask, last_position, next_item_loss,
    real_positions,
};
use crate::size;
use crate::{
    Batch, Export, Input, ModelFamily, ModelInit, ModelSettings, Query, Recommender, kinds,
};

/// The layer norms' ε (the reference implementation's).
pub const LAYER_NORM_EPSILON: f64 = 1e-8;

/// SASRec hyper-parameters (the paper's Games settings by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SasRecConfig {
    /// Embedding and hidden size.
    pub hidden: usize,
    /// Self-attention blocks.
    pub blocks: usize,
    /// Attention heads (must divide `hidden`).
    pub heads: usize,
    /// Window length: the latest items the model reads.
    pub max_len: usize,
    /// Dropout on embeddings, attention weights and feed-forward layers.
    pub dropout: f64,
    /// Training loss.
    pub loss: SequenceLoss,
    /// Sampled negatives per position for `bce` and `sampled_softmax`. BCE averages the
    /// negatives' term over every (position, negative) pair, as the PyTorch reimplementation
    /// does, so its weight does not grow with this count.
    pub negatives: usize,
}

impl Default for SasRecConfig {
    fn default() -> Self {
        Self {
            hidden: 50,
            blocks: 2,
            heads: 1,
            max_len: 50,
            dropout: 0.5,
            loss: SequenceLoss::default(),
            negatives: 1,
        }
    }
}

/// Xavier-normal dense layer, as the reference implementation initialises every matrix.
fn xavier_normal_linear(size: usize, device: &Device) -> Linear {
    LinearConfig::new(size, size)
        .with_initializer(Initializer::XavierNormal { gain: 1.0 })
        .init(device)
}

/// A Xavier-normal embedding table: N(0, 2 / (rows + dim)).
fn xavier_normal_embedding(rows: usize, dim: usize, device: &Device) -> Embedding {
    embedding(rows, dim, (2.0 / (rows + dim) as f64).sqrt(), device)
}

impl SasRecConfig {
    fn spec(&self) -> TransformerSpec {
        TransformerSpec {
            hidden: self.hidden,
            blocks: self.blocks,
            heads: self.heads,
            max_len: self.max_len,
            layer_norm_epsilon: LAYER_NORM_EPSILON,
        }
    }

    /// How training examples are made: each next item, with sampled negatives for the sampled
    /// losses.
    fn task(&self) -> SequenceTask {
        SequenceTask::NextItem {
            negatives: match self.loss {
                SequenceLoss::Softmax => 0,
                SequenceLoss::Bce | SequenceLoss::SampledSoftmax => self.negatives,
            },
        }
    }

    /// Builds the model over the catalogue's items.
    pub fn init(&self, init: &ModelInit, device: &Device) -> SasRec {
        let num_items = init.items;
        // Row 0 pads: it starts at zero and stays unused (padded positions are zeroed).
        let rows = tokens::table_rows(num_items, false);
        let std = (2.0 / (rows + self.hidden) as f64).sqrt();
        let table =
            Tensor::<2>::random([rows, self.hidden], Distribution::Normal(0.0, std), device)
                .slice_assign(
                    [0..1, 0..self.hidden],
                    Tensor::zeros([1, self.hidden], device),
                );
        let items = Embedding {
            weight: Param::from_tensor(table),
        };
        let norm = || {
            LayerNormConfig::new(self.hidden)
                .with_epsilon(LAYER_NORM_EPSILON)
                .init(device)
        };
        let blocks = (0..self.blocks)
            .map(|_| SasRecBlock {
                attention_norm: norm(),
                attention: Attention::new(
                    self.hidden,
                    self.heads,
                    self.dropout,
                    init.masks,
                    Initializer::XavierNormal { gain: 1.0 },
                    device,
                ),
                feed_forward_norm: norm(),
                feed_forward_in: xavier_normal_linear(self.hidden, device),
                feed_forward_out: xavier_normal_linear(self.hidden, device),
                dropout: Dropout::new(self.dropout, init.masks),
            })
            .collect();
        SasRec {
            items,
            positions: xavier_normal_embedding(self.max_len, self.hidden, device),
            blocks,
            final_norm: norm(),
            dropout: Dropout::new(self.dropout, init.masks),
            num_items,
            max_len: self.max_len,
            heads: self.heads,
            loss: self.loss,
        }
    }
}

impl ModelFamily for kinds::SasRec {
    type Config = SasRecConfig;
    type Model = SasRec;

    /// β₂ 0.98, as SASRec's code trains.
    const BENCH_ADAM_BETA2: f32 = 0.98;

    /// The paper's Games settings: hidden 50, 2 blocks, 1 head, window 50, dropout 0.5, BCE
    /// with one negative.
    fn bench_preset() -> SasRecConfig {
        SasRecConfig {
            hidden: 50,
            blocks: 2,
            heads: 1,
            max_len: 50,
            dropout: 0.5,
            loss: SequenceLoss::Bce,
            negatives: 1,
        }
    }
}

impl ModelSettings for SasRecConfig {
    fn input(&self) -> Input {
        Input::Sequences {
            max_len: self.max_len,
            task: self.task(),
        }
    }

    fn validate(&self) -> Result<(), ModelError> {
        self.spec().validate(1)?;
        check_dropout(self.dropout)?;
        let sampled = match self.loss {
            SequenceLoss::Bce => Some("bce"),
            SequenceLoss::SampledSoftmax => Some("sampled_softmax"),
            SequenceLoss::Softmax => None,
        };
        if let Some(loss) = sampled
            && self.negatives == 0
        {
            return Err(ModelError::NoNegatives(loss));
        }
        Ok(())
    }

    fn parameter_count(&self, _users: usize, items: usize) -> u128 {
        let h = self.hidden;
        // Two layer norms, the attention's four projections, the feed-forward's two layers.
        let block = size::sum([
            size::norm(h).saturating_mul(2),
            size::linear(h, h).saturating_mul(6),
        ]);
        size::sum([
            size::table(items.saturating_add(1), h),
            size::table(self.max_len, h),
            block.saturating_mul(self.blocks as u128),
            size::norm(h),
        ])
    }
}

/// One causal self-attention block.
#[derive(Module, Debug)]
pub struct SasRecBlock {
    pub(crate) attention_norm: LayerNorm,
    pub(crate) attention: Attention,
    pub(crate) feed_forward_norm: LayerNorm,
    pub(crate) feed_forward_in: Linear,
    pub(crate) feed_forward_out: Linear,
    dropout: Dropout,
}

impl SasRecBlock {
    /// Attention from the normalised states over the block's input, then the feed-forward
    /// layer, each with its residual; padded positions are zeroed.
    ///
    /// # Shapes
    /// - x: `[batch, len, hidden]`
    /// - mask: `[batch, len, len]` (`true`: may not attend)
    /// - real: `[batch, len, 1]` (0 at padded positions)
    /// - output: `[batch, len, hidden]`
    pub fn forward(&self, x: Tensor<3>, mask: Tensor<3, Bool>, real: Tensor<3>) -> Tensor<3> {
        let query = self.attention_norm.forward(x.clone());
        let attended = self.attention.forward(query.clone(), x.clone(), x, mask);
        let x = self.feed_forward_norm.forward(query + attended);
        let inner = self
            .dropout
            .forward(relu(self.feed_forward_in.forward(x.clone())));
        let x = x + self.dropout.forward(self.feed_forward_out.forward(inner));
        x * real
    }
}

/// SASRec.
#[derive(Module, Debug)]
pub struct SasRec {
    /// `[num_items + 1, hidden]`: row 0 pads, row `i + 1` is item `i` (input and output).
    pub items: Embedding,
    /// `[max_len, hidden]`: the last position of a window is always `max_len - 1`.
    pub positions: Embedding,
    /// The self-attention blocks.
    pub blocks: Vec<SasRecBlock>,
    /// Layer norm after the last block.
    pub final_norm: LayerNorm,
    dropout: Dropout,
    num_items: usize,
    max_len: usize,
    heads: usize,
    #[module(skip)]
    loss: SequenceLoss,
}

impl SasRec {
    /// The hidden state of every position.
    ///
    /// # Shapes
    /// - tokens: `[batch, len]` with `len <= max_len`, left-padded
    /// - output: `[batch, len, hidden]` (zero at padded positions)
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let [_, len] = tokens.dims();
        assert!(
            len <= self.max_len,
            "a window of {len} tokens is longer than max_len {}",
            self.max_len
        );
        let hidden = self.items.weight.dims()[1];
        let device = tokens.device();
        let real = real_positions(&tokens);
        let mask = attention_mask(&tokens, true);
        // A shorter window takes the last positions, so the latest item is always max_len - 1.
        let position_ids =
            Tensor::<1, Int>::arange((self.max_len - len) as i64..self.max_len as i64, &device)
                .unsqueeze_dim::<2>(0);
        let x = self
            .items
            .forward(tokens)
            .mul_scalar((hidden as f64).sqrt())
            + self.positions.forward(position_ids);
        let mut x = self.dropout.forward(x) * real.clone();
        for block in &self.blocks {
            x = block.forward(x, mask.clone(), real.clone());
        }
        self.final_norm.forward(x)
    }

    /// The output vector of every item (the item embeddings without the padding row).
    ///
    /// # Shapes
    /// - output: `[num_items, hidden]`
    fn item_vectors(&self) -> Tensor<2> {
        self.items.weight.val().narrow(0, 1, self.num_items)
    }
}

impl Recommender for SasRec {
    fn loss(&self, batch: &Batch, _step: usize) -> Tensor<1> {
        let batch = batch.sequences();
        let hidden = at_targets(self.forward(batch.inputs.clone()), batch);
        next_item_loss(hidden, self.item_vectors(), batch, self.loss)
    }

    fn score_all(&self, query: &Query) -> Tensor<2> {
        let tokens = query.windows().clone();
        last_position(self.forward(tokens)).matmul(self.item_vectors().transpose())
    }

    fn export(&self) -> Export {
        let spec = TransformerSpec {
            hidden: self.items.weight.dims()[1],
            blocks: self.blocks.len(),
            heads: self.heads,
            max_len: self.max_len,
            layer_norm_epsilon: LAYER_NORM_EPSILON,
        };
        Export::parameters(ModelSpec::SasRec(spec), self)
    }
}
