//! Multi-head attention, computed as burn's `MultiHeadAttention` computes it (the same
//! parameters, initialised in the same order, the same masking and scaling), with ember's
//! [`Dropout`] on the attention weights: burn's draws that mask element by element on CPUs.

use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;

use crate::activation::softmax_last;
use crate::dropout::{Dropout, Masks};

/// What burn's attention fills masked scores with before the softmax.
const MASKED_SCORE: f64 = -1.0e4;

/// Multi-head attention.
#[derive(Module, Debug)]
pub struct Attention {
    /// `[hidden, hidden]`.
    pub query: Linear,
    /// `[hidden, hidden]`.
    pub key: Linear,
    /// `[hidden, hidden]`.
    pub value: Linear,
    /// `[hidden, hidden]`.
    pub output: Linear,
    dropout: Dropout,
    heads: usize,
}

impl Attention {
    /// `heads` heads over `hidden` features (heads divide it), dropout `dropout` on the
    /// attention weights, every matrix initialised with `initializer`.
    pub fn new(
        hidden: usize,
        heads: usize,
        dropout: f64,
        masks: Masks,
        initializer: Initializer,
        device: &Device,
    ) -> Self {
        let linear = || {
            LinearConfig::new(hidden, hidden)
                .with_initializer(initializer.clone())
                .init(device)
        };
        Self {
            query: linear(),
            key: linear(),
            value: linear(),
            output: linear(),
            dropout: Dropout::new(dropout, masks),
            heads,
        }
    }

    /// Heads.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// Each query position attends over the key/value positions that `mask` leaves open.
    ///
    /// # Shapes
    /// - query: `[batch, len_q, hidden]`
    /// - keys, values: `[batch, len_k, hidden]`
    /// - mask: `[batch, len_q, len_k]` (`true`: may not attend)
    /// - output: `[batch, len_q, hidden]`
    pub fn forward(
        &self,
        query: Tensor<3>,
        keys: Tensor<3>,
        values: Tensor<3>,
        mask: Tensor<3, Bool>,
    ) -> Tensor<3> {
        let [batch, len_q, hidden] = query.dims();
        let d = hidden / self.heads;
        let split = |x: Tensor<3>, linear: &Linear| {
            let [batch, len, _] = x.dims();
            linear
                .forward(x)
                .reshape([batch, len, self.heads, d])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (
            split(query, &self.query),
            split(keys, &self.key),
            split(values, &self.value),
        );
        let [_, len_k, _] = mask.dims();
        let scores = q
            .matmul(k.transpose())
            .div_scalar((d as f32).sqrt())
            .mask_fill(mask.reshape([batch, 1, len_q, len_k]), MASKED_SCORE);
        let weights = self.dropout.forward(softmax_last(scores));
        let context = weights
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([batch, len_q, hidden]);
        self.output.forward(context)
    }
}
