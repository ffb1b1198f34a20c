//! BERT4Rec (Sun et al., "BERT4Rec: Sequential Recommendation with Bidirectional Encoder
//! Representations from Transformer", CIKM 2019).
//!
//! A window of the user's last `max_len` items, some replaced by a mask token, is embedded
//! (item + learned position embeddings, layer norm, dropout) and read by a bidirectional
//! transformer encoder (post-norm blocks, GELU feed-forward of width `4 · hidden`, padding never
//! attended to). At each masked position a head (dense, GELU, layer norm) projects the hidden
//! state onto the item embeddings plus an output bias, and a softmax over every item is trained
//! to recover the masked item (the cloze task). To recommend, the mask token is appended to the
//! history and the last position is scored.

use burn::module::{Module, Param};
use burn::nn::{Embedding, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use ember_spec::{ModelSpec, TransformerSpec, tokens};
use serde::{Deserialize, Serialize};

use crate::activation::gelu;
use crate::attention::Attention;
use crate::config::{ModelError, check_dropout};
use crate::dropout::{Dropout, Masks};
use crate::layers::embedding;
use crate::sequence::{SequenceTask, at_targets, full_softmax_loss, last_position, real_positions};
use crate::size;
use crate::{
    Batch, Export, Input, ModelFamily, ModelInit, ModelSettings, Query, Recommender, kinds,
};

/// The layer norms' ε (the original implementation's).
pub const LAYER_NORM_EPSILON: f64 = 1e-12;

/// BERT4Rec hyper-parameters. The defaults are the paper's architecture (hidden 64, 2 blocks, 2
/// heads, dropout 0.1) with a window of 50 and its ML-1m mask probability 0.2; for short
/// sequences (its Beauty data) the paper masks with 0.6.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bert4RecConfig {
    /// Embedding and hidden size.
    pub hidden: usize,
    /// Transformer blocks.
    pub blocks: usize,
    /// Attention heads (must divide `hidden`).
    pub heads: usize,
    /// Window length, the appended mask token included when scoring.
    pub max_len: usize,
    /// Dropout on embeddings, attention weights and feed-forward layers.
    pub dropout: f64,
    /// Probability that a training item is masked.
    pub mask_prob: f64,
}

impl Default for Bert4RecConfig {
    fn default() -> Self {
        Self {
            hidden: 64,
            blocks: 2,
            heads: 2,
            max_len: 50,
            dropout: 0.1,
            mask_prob: 0.2,
        }
    }
}

impl Bert4RecConfig {
    fn spec(&self) -> TransformerSpec {
        TransformerSpec {
            hidden: self.hidden,
            blocks: self.blocks,
            heads: self.heads,
            max_len: self.max_len,
            layer_norm_epsilon: LAYER_NORM_EPSILON,
        }
    }

    /// Builds the model over the catalogue's items.
    pub fn init(&self, init: &ModelInit, device: &Device) -> Bert4Rec {
        let num_items = init.items;
        let norm = || {
            LayerNormConfig::new(self.hidden)
                .with_epsilon(LAYER_NORM_EPSILON)
                .init(device)
        };
        Bert4Rec {
            // Rows: padding, the items, the mask token.
            items: embedding(
                tokens::table_rows(num_items, true),
                self.hidden,
                0.02,
                device,
            ),
            positions: embedding(self.max_len, self.hidden, 0.02, device),
            embedding_norm: norm(),
            dropout: Dropout::new(self.dropout, init.masks),
            blocks: (0..self.blocks)
                .map(|_| Bert4RecBlock::new(self, init.masks, device))
                .collect(),
            head: LinearConfig::new(self.hidden, self.hidden).init(device),
            head_norm: norm(),
            output_bias: Param::from_tensor(Tensor::zeros([num_items], device)),
            num_items,
            max_len: self.max_len,
            heads: self.heads,
        }
    }
}

impl ModelFamily for kinds::Bert4Rec {
    type Config = Bert4RecConfig;
    type Model = Bert4Rec;

    /// The paper's: hidden 64, 2 blocks, 2 heads, window 50, dropout 0.1, mask probability
    /// 0.2.
    fn bench_preset() -> Bert4RecConfig {
        Bert4RecConfig {
            hidden: 64,
            blocks: 2,
            heads: 2,
            max_len: 50,
            dropout: 0.1,
            mask_prob: 0.2,
        }
    }
}

impl ModelSettings for Bert4RecConfig {
    fn input(&self) -> Input {
        Input::Sequences {
            max_len: self.max_len,
            task: SequenceTask::MaskedItem {
                mask_prob: self.mask_prob,
            },
        }
    }

    fn validate(&self) -> Result<(), ModelError> {
        // The scored window holds the mask token and at least one item.
        self.spec().validate(2)?;
        check_dropout(self.dropout)?;
        if !(self.mask_prob > 0.0 && self.mask_prob < 1.0) {
            return Err(ModelError::BadMaskProb(self.mask_prob));
        }
        Ok(())
    }

    fn parameter_count(&self, _users: usize, items: usize) -> u128 {
        let h = self.hidden;
        let wide = h.saturating_mul(4);
        let block = size::sum([
            size::linear(h, h).saturating_mul(4),
            size::norm(h).saturating_mul(2),
            size::linear(h, wide),
            size::linear(wide, h),
        ]);
        size::sum([
            size::table(items.saturating_add(2), h),
            size::table(self.max_len, h),
            size::norm(h),
            block.saturating_mul(self.blocks as u128),
            size::linear(h, h),
            size::norm(h),
            items as u128,
        ])
    }
}

/// One post-norm encoder block, as BERT's: `x = LN(x + attention(x))`,
/// `x = LN(x + W₂ GELU(W₁ x))`, with dropout on both residual branches and inside the
/// feed-forward layer. It computes what burn's `TransformerEncoderLayer` computes (and draws
/// its initial weights in the same order), with its parts named as the export names them.
#[derive(Module, Debug)]
pub struct Bert4RecBlock {
    pub(crate) attention: Attention,
    pub(crate) attention_norm: LayerNorm,
    pub(crate) feed_forward_norm: LayerNorm,
    dropout: Dropout,
    pub(crate) feed_forward_in: Linear,
    pub(crate) feed_forward_out: Linear,
    feed_forward_dropout: Dropout,
}

impl Bert4RecBlock {
    fn new(config: &Bert4RecConfig, masks: Masks, device: &Device) -> Self {
        // burn's transformer default: Kaiming-uniform with gain 1/√3.
        let initializer = Initializer::KaimingUniform {
            gain: 1.0 / 3.0f64.sqrt(),
            fan_out_only: false,
        };
        let norm = || {
            LayerNormConfig::new(config.hidden)
                .with_epsilon(LAYER_NORM_EPSILON)
                .init(device)
        };
        let linear = |input, output| {
            LinearConfig::new(input, output)
                .with_initializer(initializer.clone())
                .init(device)
        };
        let attention = Attention::new(
            config.hidden,
            config.heads,
            config.dropout,
            masks,
            initializer.clone(),
            device,
        );
        let attention_norm = norm();
        let feed_forward_norm = norm();
        let dropout = Dropout::new(config.dropout, masks);
        let feed_forward_in = linear(config.hidden, 4 * config.hidden);
        let feed_forward_out = linear(4 * config.hidden, config.hidden);
        Self {
            attention,
            attention_norm,
            feed_forward_norm,
            dropout,
            feed_forward_in,
            feed_forward_out,
            feed_forward_dropout: Dropout::new(config.dropout, masks),
        }
    }

    /// # Shapes
    /// - x: `[batch, len, hidden]`
    /// - padding: `[batch, len]` (`true` at padded positions, never attended to)
    /// - output: `[batch, len, hidden]`
    pub fn forward(&self, x: Tensor<3>, padding: Tensor<2, Bool>) -> Tensor<3> {
        let [batch, len] = padding.dims();
        let padded_keys = padding.unsqueeze_dim::<3>(1).expand([batch, len, len]);
        let attended = self
            .attention
            .forward(x.clone(), x.clone(), x.clone(), padded_keys);
        let x = self
            .attention_norm
            .forward(x + self.dropout.forward(attended));
        let inner = self
            .feed_forward_dropout
            .forward(gelu(self.feed_forward_in.forward(x.clone())));
        let outer = self.feed_forward_out.forward(inner);
        self.feed_forward_norm
            .forward(x + self.dropout.forward(outer))
    }
}

/// BERT4Rec.
#[derive(Module, Debug)]
pub struct Bert4Rec {
    /// `[num_items + 2, hidden]`: row 0 pads, row `i + 1` is item `i`, the last row masks.
    pub items: Embedding,
    /// `[max_len, hidden]`: the last position of a window is always `max_len - 1`.
    pub positions: Embedding,
    /// Layer norm of the summed embeddings.
    pub embedding_norm: LayerNorm,
    pub(crate) dropout: Dropout,
    /// The bidirectional encoder blocks.
    pub blocks: Vec<Bert4RecBlock>,
    /// The output head's dense layer.
    pub head: Linear,
    /// The output head's layer norm.
    pub head_norm: LayerNorm,
    /// `[num_items]` added to every item's logit.
    pub output_bias: Param<Tensor<1>>,
    num_items: usize,
    max_len: usize,
    heads: usize,
}

impl Bert4Rec {
    /// The encoder's hidden state at every position.
    ///
    /// # Shapes
    /// - tokens: `[batch, len]` with `len <= max_len`, left-padded
    /// - output: `[batch, len, hidden]`
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let [_, len] = tokens.dims();
        assert!(
            len <= self.max_len,
            "a window of {len} tokens is longer than max_len {}",
            self.max_len
        );
        let device = tokens.device();
        let padding = tokens.clone().equal_elem(tokens::PAD);
        let real = real_positions(&tokens);
        let position_ids =
            Tensor::<1, Int>::arange((self.max_len - len) as i64..self.max_len as i64, &device)
                .unsqueeze_dim::<2>(0);
        let x = self.items.forward(tokens) + self.positions.forward(position_ids);
        let mut x = self.dropout.forward(self.embedding_norm.forward(x)) * real;
        for block in &self.blocks {
            x = block.forward(x, padding.clone());
        }
        x
    }

    /// Logits of every item from hidden states, through the output head.
    ///
    /// # Shapes
    /// - hidden: `[rows, hidden]`
    /// - output: `[rows, num_items]`
    fn logits(&self, hidden: Tensor<2>) -> Tensor<2> {
        let head = self.head_norm.forward(gelu(self.head.forward(hidden)));
        let items = self.items.weight.val().narrow(0, 1, self.num_items);
        head.matmul(items.transpose()) + self.output_bias.val().unsqueeze_dim::<2>(0)
    }
}

impl Recommender for Bert4Rec {
    fn loss(&self, batch: &Batch, _step: usize) -> Tensor<1> {
        let batch = batch.sequences();
        let hidden = at_targets(self.forward(batch.inputs.clone()), batch);
        full_softmax_loss(self.logits(hidden), batch)
    }

    /// The windows end with the mask token, whose state scores every item.
    fn score_all(&self, query: &Query) -> Tensor<2> {
        self.logits(last_position(self.forward(query.windows().clone())))
    }

    fn export(&self) -> Export {
        let spec = TransformerSpec {
            hidden: self.items.weight.dims()[1],
            blocks: self.blocks.len(),
            heads: self.heads,
            max_len: self.max_len,
            layer_norm_epsilon: LAYER_NORM_EPSILON,
        };
        Export::parameters(ModelSpec::Bert4Rec(spec), self)
    }
}
