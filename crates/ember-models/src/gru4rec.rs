//! GRU4Rec (Hidasi et al., "Session-based Recommendations with Recurrent Neural Networks",
//! ICLR 2016), with the improvements of Hidasi & Karatzoglou ("Recurrent Neural Networks with
//! Top-k Gains for Session-based Recommendations", CIKM 2018) as options.
//!
//! A GRU reads the user's latest `max_len` items (item embeddings, dropout); its state after
//! each item, projected onto the item embeddings (shared between input and output, as RecBole's
//! widely used GRU4Rec does), scores every item as the next one. Training predicts each next
//! item of a user's training sequence (every prefix at once, the GRU being causal) with:
//! - `softmax`: cross-entropy over every item (RecBole's default);
//! - `bpr_max` (2018, eq. 9): `−log Σⱼ sⱼ σ(r_i − r_j) + λ Σⱼ sⱼ r_j²` over `negatives` sampled
//!   items, `sⱼ` the softmax of the negatives' scores, `λ = bpreg`.
//!
//! Windows are left-padded; the state stays zero until the first real item, so padding changes
//! nothing, and ember-infer runs the same GRU over the real items alone from a zero state.

use burn::nn::{Embedding, Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, log_softmax, sigmoid, softmax};
use ember_spec::{Gru4RecSpec, ModelSpec, tokens};
use serde::{Deserialize, Serialize};

use crate::activation::tanh;
use crate::config::{ModelError, check_dropout, check_weight};
use crate::dropout::Dropout;
use crate::sequence::{SequenceTask, at_targets, full_softmax_loss, last_position};
use crate::size;
use crate::{
    Batch, Export, Input, ModelFamily, ModelInit, ModelSettings, Query, Recommender, SequenceBatch,
    kinds,
};

/// GRU4Rec's training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gru4RecLoss {
    /// Cross-entropy over every item.
    #[default]
    Softmax,
    /// BPR-max over sampled negatives, with score regularisation (Hidasi & Karatzoglou 2018).
    BprMax,
}

/// GRU4Rec hyper-parameters (RecBole's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Gru4RecConfig {
    /// Item embedding size.
    pub embedding: usize,
    /// GRU state size.
    pub hidden: usize,
    /// Stacked GRU layers.
    pub layers: usize,
    /// Window length: the latest items the model reads.
    pub max_len: usize,
    /// Dropout on the item embeddings and between GRU layers.
    pub dropout: f64,
    /// Training loss.
    pub loss: Gru4RecLoss,
    /// Sampled negatives per target for `bpr_max`.
    pub negatives: usize,
    /// `λ` of BPR-max's score regularisation.
    pub bpreg: f64,
}

impl Default for Gru4RecConfig {
    fn default() -> Self {
        Self {
            embedding: 64,
            hidden: 128,
            layers: 1,
            max_len: 50,
            dropout: 0.3,
            loss: Gru4RecLoss::default(),
            negatives: 128,
            bpreg: 1.0,
        }
    }
}

/// One GRU layer: input and recurrent projections, gates in the order reset, update, new.
#[derive(Module, Debug)]
pub struct GruLayer {
    /// `[in, 3 · hidden]`.
    pub input: Linear,
    /// `[hidden, 3 · hidden]`.
    pub recurrent: Linear,
}

impl GruLayer {
    fn new(input: usize, hidden: usize, device: &Device) -> Self {
        // Xavier-uniform weights (as RecBole initialises its GRU), PyTorch's uniform biases.
        let linear = |fan_in: usize| {
            let bound = 1.0 / (hidden as f64).sqrt();
            let mut layer = LinearConfig::new(fan_in, 3 * hidden)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device);
            layer.bias = Some(burn::module::Param::from_tensor(Tensor::random(
                [3 * hidden],
                burn::tensor::Distribution::Uniform(-bound, bound),
                device,
            )));
            layer
        };
        Self {
            input: linear(input),
            recurrent: linear(hidden),
        }
    }

    /// The state after every position; where `real` is 0 (padding) the state carries over.
    ///
    /// # Shapes
    /// - x: `[batch, len, in]`
    /// - real: `[batch, len, 1]`
    /// - output: `[batch, len, hidden]`
    fn forward(&self, x: Tensor<3>, real: &Tensor<3>) -> Tensor<3> {
        let [batch, len, _] = x.dims();
        let hidden = self.recurrent.weight.dims()[0];
        // Each gate's weights and biases, cut once. Slicing a tracked tensor costs a zero
        // gradient of its whole shape in the backward pass: cutting the `[batch, len, 3 ·
        // hidden]` input projections at every position made that a `len²` cost, which the
        // per-position products below avoid (only the smaller `x` is sliced per position).
        let gates = |linear: &Linear| {
            let weight = linear.weight.val();
            let bias = linear.bias.as_ref().map(|b| b.val());
            (0..3)
                .map(|k| {
                    let w = weight.clone().narrow(1, k * hidden, hidden);
                    let b = bias
                        .clone()
                        .map(|b| b.narrow(0, k * hidden, hidden).unsqueeze_dim(0));
                    (w, b)
                })
                .collect::<Vec<_>>()
        };
        let (input_gates, recurrent_gates) = (gates(&self.input), gates(&self.recurrent));
        let project = |x: &Tensor<2>, (w, b): &(Tensor<2>, Option<Tensor<2>>)| {
            let y = x.clone().matmul(w.clone());
            match b {
                Some(b) => y + b.clone(),
                None => y,
            }
        };
        let mut state = Tensor::<2>::zeros([batch, hidden], &x.device());
        let mut states = Vec::with_capacity(len);
        for t in 0..len {
            let input = x.clone().narrow(1, t, 1).reshape([batch, x.dims()[2]]);
            let gate = |k: usize| {
                (
                    project(&input, &input_gates[k]),
                    project(&state, &recurrent_gates[k]),
                )
            };
            let ((rx, rh), (zx, zh), (nx, nh)) = (gate(0), gate(1), gate(2));
            let reset = sigmoid(rx + rh);
            let update = sigmoid(zx + zh);
            let new = tanh(nx + reset * nh);
            let next = new.clone() + update * (state.clone() - new); // (1 − z) n + z s
            let keep = real.clone().narrow(1, t, 1).reshape([batch, 1]);
            state = state.clone() + keep * (next - state);
            states.push(state.clone());
        }
        Tensor::stack(states, 1)
    }
}

/// GRU4Rec.
#[derive(Module, Debug)]
pub struct Gru4Rec {
    /// `[num_items + 1, embedding]`: row 0 pads, row `i + 1` is item `i` (input and output).
    pub items: Embedding,
    /// The GRU layers.
    pub gru: Vec<GruLayer>,
    /// `[hidden, embedding]`: the state projected onto the item embeddings.
    pub projection: Linear,
    dropout: Dropout,
    num_items: usize,
    max_len: usize,
    bpreg: f64,
    #[module(skip)]
    loss: Gru4RecLoss,
}

impl Gru4RecConfig {
    fn spec(&self) -> Gru4RecSpec {
        Gru4RecSpec {
            embedding: self.embedding,
            hidden: self.hidden,
            layers: self.layers,
            max_len: self.max_len,
        }
    }

    fn task(&self) -> SequenceTask {
        SequenceTask::NextItem {
            negatives: match self.loss {
                Gru4RecLoss::Softmax => 0,
                Gru4RecLoss::BprMax => self.negatives,
            },
        }
    }

    /// Builds the model over the catalogue's items.
    pub fn init(&self, init: &ModelInit, device: &Device) -> Gru4Rec {
        let rows = tokens::table_rows(init.items, false);
        let std = (2.0 / (rows + self.embedding) as f64).sqrt(); // Xavier-normal
        Gru4Rec {
            items: crate::layers::embedding(rows, self.embedding, std, device),
            gru: (0..self.layers)
                .map(|k| {
                    let input = if k == 0 { self.embedding } else { self.hidden };
                    GruLayer::new(input, self.hidden, device)
                })
                .collect(),
            projection: LinearConfig::new(self.hidden, self.embedding).init(device),
            dropout: Dropout::new(self.dropout, init.masks),
            num_items: init.items,
            max_len: self.max_len,
            bpreg: self.bpreg,
            loss: self.loss,
        }
    }
}

impl ModelFamily for kinds::Gru4Rec {
    type Config = Gru4RecConfig;
    type Model = Gru4Rec;

    /// One 128-wide GRU layer over 64-wide embeddings, window 50, dropout 0.3, the softmax
    /// loss.
    fn bench_preset() -> Gru4RecConfig {
        Gru4RecConfig {
            embedding: 64,
            hidden: 128,
            layers: 1,
            max_len: 50,
            dropout: 0.3,
            loss: Gru4RecLoss::Softmax,
            negatives: 128,
            bpreg: 1.0,
        }
    }
}

impl ModelSettings for Gru4RecConfig {
    fn input(&self) -> Input {
        Input::Sequences {
            max_len: self.max_len,
            task: self.task(),
        }
    }

    fn validate(&self) -> Result<(), ModelError> {
        self.spec().validate()?;
        check_dropout(self.dropout)?;
        check_weight("bpreg", self.bpreg)?;
        if self.loss == Gru4RecLoss::BprMax && self.negatives == 0 {
            return Err(ModelError::NoNegatives("bpr_max"));
        }
        Ok(())
    }

    fn parameter_count(&self, _users: usize, items: usize) -> u128 {
        let (e, h) = (self.embedding, self.hidden);
        let gates = h.saturating_mul(3);
        let layer = |input| size::sum([size::linear(input, gates), size::linear(h, gates)]);
        let stacked = match self.layers {
            0 => 0,
            n => layer(e).saturating_add(layer(h).saturating_mul(n as u128 - 1)),
        };
        size::sum([
            size::table(items.saturating_add(1), e),
            stacked,
            size::linear(h, e),
        ])
    }
}

impl Gru4Rec {
    /// The projected state after every position.
    ///
    /// # Shapes
    /// - tokens: `[batch, len]` with `len <= max_len`, left-padded
    /// - output: `[batch, len, embedding]`
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let [batch, len] = tokens.dims();
        assert!(
            len <= self.max_len,
            "a window of {len} tokens is longer than max_len {}",
            self.max_len
        );
        let real = crate::sequence::real_positions(&tokens);
        let mut x = self.dropout.forward(self.items.forward(tokens));
        for (k, layer) in self.gru.iter().enumerate() {
            if k > 0 {
                x = self.dropout.forward(x);
            }
            x = layer.forward(x, &real);
        }
        let hidden = x.dims()[2];
        let embedding = self.items.weight.dims()[1];
        self.projection
            .forward(x.reshape([batch * len, hidden]))
            .reshape([batch, len, embedding])
    }

    /// The output vector of every item (the item embeddings without the padding row).
    ///
    /// # Shapes
    /// - output: `[num_items, embedding]`
    fn item_vectors(&self) -> Tensor<2> {
        self.items.weight.val().narrow(0, 1, self.num_items)
    }

    /// BPR-max of each target against its sampled negatives, averaged over targets.
    ///
    /// # Shapes
    /// - states: `[targets, embedding]`
    /// - output: `[1]`
    fn bpr_max(&self, states: Tensor<2>, batch: &SequenceBatch) -> Tensor<1> {
        let [targets, dim] = states.dims();
        let items = self.item_vectors();
        let negatives = batch
            .negatives
            .clone()
            .expect("the trainer samples negatives for bpr_max");
        let k = negatives.dims()[1];
        let positive = (items.clone().select(0, batch.targets.clone()) * states.clone()).sum_dim(1); // [targets, 1]
        let negative = (items
            .select(0, negatives.reshape([targets * k]))
            .reshape([targets, k, dim])
            * states.unsqueeze_dim::<3>(1))
        .sum_dim(2)
        .reshape([targets, k]);
        // log Σⱼ sⱼ σ(r_i − r_j) as a log-sum-exp of log sⱼ + log σ(r_i − r_j), for stability.
        let terms = log_sigmoid(positive - negative.clone()) + log_softmax(negative.clone(), 1);
        let largest = terms.clone().max_dim(1).detach();
        let ranked = (terms - largest.clone()).exp().sum_dim(1).log() + largest;
        let regularisation = (softmax(negative.clone(), 1) * negative.powi_scalar(2)).sum_dim(1);
        (regularisation.mul_scalar(self.bpreg) - ranked)
            .mean()
            .reshape([1])
    }
}

impl Recommender for Gru4Rec {
    fn loss(&self, batch: &Batch, _step: usize) -> Tensor<1> {
        let batch = batch.sequences();
        let states = at_targets(self.forward(batch.inputs.clone()), batch);
        match self.loss {
            Gru4RecLoss::Softmax => {
                full_softmax_loss(states.matmul(self.item_vectors().transpose()), batch)
            }
            Gru4RecLoss::BprMax => self.bpr_max(states, batch),
        }
    }

    fn score_all(&self, query: &Query) -> Tensor<2> {
        last_position(self.forward(query.windows().clone())).matmul(self.item_vectors().transpose())
    }

    fn export(&self) -> Export {
        let spec = Gru4RecSpec {
            embedding: self.items.weight.dims()[1],
            hidden: self.projection.weight.dims()[0],
            layers: self.gru.len(),
            max_len: self.max_len,
        };
        Export::parameters(ModelSpec::Gru4Rec(spec), self)
    }
}
