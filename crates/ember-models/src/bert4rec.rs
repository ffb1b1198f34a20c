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
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::prelude::*;
use burn::tensor::activation::gelu;
use serde::{Deserialize, Serialize};

use crate::layers::embedding;
use crate::sequence::{
    PAD_TOKEN, SequenceBatch, SequenceModel, SequenceTask, at_targets, full_softmax_loss,
    last_position, real_positions,
};

/// The layer norms' ε (the original implementation's).
pub const LAYER_NORM_EPSILON: f64 = 1e-12;

fn default_hidden() -> usize {
    64
}
fn default_blocks() -> usize {
    2
}
fn default_heads() -> usize {
    2
}
fn default_max_len() -> usize {
    50
}
fn default_dropout() -> f64 {
    0.1
}
fn default_mask_prob() -> f64 {
    0.2
}

/// BERT4Rec hyper-parameters. The defaults are the paper's architecture (hidden 64, 2 blocks, 2
/// heads, dropout 0.1) with a window of 50 and its ML-1m mask probability 0.2; for short
/// sequences (its Beauty data) the paper masks with 0.6.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bert4RecConfig {
    /// Embedding and hidden size.
    #[serde(default = "default_hidden")]
    pub hidden: usize,
    /// Transformer blocks.
    #[serde(default = "default_blocks")]
    pub blocks: usize,
    /// Attention heads (must divide `hidden`).
    #[serde(default = "default_heads")]
    pub heads: usize,
    /// Window length, the appended mask token included when scoring.
    #[serde(default = "default_max_len")]
    pub max_len: usize,
    /// Dropout on embeddings, attention weights and feed-forward layers.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    /// Probability that a training item is masked.
    #[serde(default = "default_mask_prob")]
    pub mask_prob: f64,
}

impl Bert4RecConfig {
    /// Builds the model over `num_items` items.
    pub fn init(&self, num_items: usize, device: &Device) -> Bert4Rec {
        let norm = || {
            LayerNormConfig::new(self.hidden)
                .with_epsilon(LAYER_NORM_EPSILON)
                .init(device)
        };
        Bert4Rec {
            // Rows: padding, the items, the mask token.
            items: embedding(num_items + 2, self.hidden, 0.02, device),
            positions: embedding(self.max_len, self.hidden, 0.02, device),
            embedding_norm: norm(),
            dropout: DropoutConfig::new(self.dropout).init(),
            encoder: TransformerEncoderConfig::new(
                self.hidden,
                4 * self.hidden,
                self.heads,
                self.blocks,
            )
            .with_dropout(self.dropout)
            .with_layer_norm_eps(LAYER_NORM_EPSILON)
            .init(device),
            head: LinearConfig::new(self.hidden, self.hidden).init(device),
            head_norm: norm(),
            output_bias: Param::from_tensor(Tensor::zeros([num_items], device)),
            num_items,
            max_len: self.max_len,
            mask_prob: self.mask_prob,
        }
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
    /// The bidirectional encoder.
    pub encoder: TransformerEncoder,
    /// The output head's dense layer.
    pub head: Linear,
    /// The output head's layer norm.
    pub head_norm: LayerNorm,
    /// `[num_items]` added to every item's logit.
    pub output_bias: Param<Tensor<1>>,
    num_items: usize,
    max_len: usize,
    mask_prob: f64,
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
        let padding = tokens.clone().equal_elem(PAD_TOKEN);
        let real = real_positions(&tokens);
        let position_ids =
            Tensor::<1, Int>::arange((self.max_len - len) as i64..self.max_len as i64, &device)
                .unsqueeze_dim::<2>(0);
        let x = self.items.forward(tokens) + self.positions.forward(position_ids);
        let x = self.dropout.forward(self.embedding_norm.forward(x)) * real;
        self.encoder
            .forward(TransformerEncoderInput::new(x).mask_pad(padding))
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

impl SequenceModel for Bert4Rec {
    fn score_windows(&self, tokens: Tensor<2, Int>) -> Tensor<2> {
        self.logits(last_position(self.forward(tokens)))
    }

    fn sequence_loss(&self, batch: &SequenceBatch) -> Tensor<1> {
        let hidden = at_targets(self.forward(batch.inputs.clone()), batch);
        full_softmax_loss(self.logits(hidden), batch)
    }

    fn num_items(&self) -> usize {
        self.num_items
    }

    fn max_len(&self) -> usize {
        self.max_len
    }

    fn task(&self) -> SequenceTask {
        SequenceTask::MaskedItem {
            mask_prob: self.mask_prob,
        }
    }
}
