//! LightGCN (He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for
//! Recommendation", SIGIR 2020).
//!
//! The only parameters are the layer-0 embeddings `E⁽⁰⁾` of users and items. They are propagated
//! over the user–item graph without weights or non-linearities (eq. 3, matrix form eq. 8):
//! `E⁽ᵏ⁺¹⁾ = Â E⁽ᵏ⁾` with `Â = D^{-1/2} A D^{-1/2}`, `A` the bipartite adjacency of the training
//! interactions and `D` its degrees, so an edge (u, i) carries `1 / √(|N_u| |N_i|)`. The final
//! embedding combines the layers, `E = Σₖ αₖ E⁽ᵏ⁾` with `αₖ = 1 / (K + 1)` (eq. 4), and a pair
//! scores `ŷ = e_u · e_i` (eq. 5). Training uses BPR over sampled negatives (eq. 15, the paper's;
//! `train.loss = "bpr"`, one negative: `train.negatives = 1`) plus `λ` times the squared norm of
//! the batch's layer-0 embeddings, halved and averaged over the batch as in the authors' code.
//!
//! The propagation is a sparse product ([`crate::propagate`]): over the graph's rows on the CPU,
//! a gather and a scatter-add over its edges on the GPU. The export holds the
//! final embeddings: inference scores by their dot product, as for MF.

use burn::nn::Embedding;
use burn::prelude::*;
use ember_spec::{LightGcnSpec, ModelSpec};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::config::{ModelError, check_init_std, check_weight};
use crate::export::named;
use crate::layers::embedding;
use crate::lookup::{IdBatch, lookup};
use crate::loss::pair_loss;
use crate::propagate::{Adjacency, propagate};
use crate::size;
use crate::{
    Batch, Export, Input, Loss, ModelFamily, ModelInit, ModelSettings, PairTargets, Query,
    Recommender, kinds,
};

/// LightGCN hyper-parameters (the paper's defaults: 64 factors, 3 layers, λ = 1e-4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LightGcnConfig {
    /// Embedding size.
    pub factors: usize,
    /// Propagation layers `K` (0 is MF trained with the same loss).
    pub layers: usize,
    /// `λ`: weight of the layer-0 embeddings' L2 penalty.
    pub reg: f64,
    /// Standard deviation of the N(0, σ²) initialisation (the authors' code uses 0.1).
    pub init_std: f64,
}

impl Default for LightGcnConfig {
    fn default() -> Self {
        Self {
            factors: 64,
            layers: 3,
            reg: 1e-4,
            init_std: 0.1,
        }
    }
}

/// The normalised bipartite graph over nodes `users ++ items`, both directions of every
/// training interaction (see [`crate::propagate`] for the product).
#[derive(Debug)]
pub struct Graph {
    /// Users; item `i` is node `users + i`.
    users: usize,
    /// The edges by target node, each weighted `1 / √(deg(source) · deg(target))`.
    adjacency: Arc<Adjacency>,
}

impl Graph {
    /// The graph of `train` (each user's items) over `items` items.
    pub fn new(train: &[Vec<u32>], items: usize) -> Self {
        let users = train.len();
        let nodes = users + items;
        let mut neighbours: Vec<Vec<u32>> = vec![Vec::new(); nodes];
        for (u, list) in train.iter().enumerate() {
            for &i in list {
                let item = users + i as usize;
                neighbours[u].push(item as u32);
                neighbours[item].push(u as u32);
            }
        }
        let degree: Vec<f64> = neighbours.iter().map(|n| n.len() as f64).collect();
        let edges = neighbours.iter().map(Vec::len).sum();
        let mut offsets = Vec::with_capacity(nodes + 1);
        let (mut sources, mut targets, mut weights) = (
            Vec::with_capacity(edges),
            Vec::with_capacity(edges),
            Vec::with_capacity(edges),
        );
        offsets.push(0);
        for (t, list) in neighbours.iter().enumerate() {
            for &s in list {
                sources.push(s as i32);
                targets.push(t as i32);
                weights.push((1.0 / (degree[s as usize] * degree[t]).sqrt()) as f32);
            }
            offsets.push(sources.len());
        }
        Self {
            users,
            adjacency: Arc::new(Adjacency {
                nodes,
                offsets,
                sources,
                targets,
                weights,
            }),
        }
    }

    /// `Â x`.
    ///
    /// # Shapes
    /// - x: `[nodes, dim]`
    /// - output: `[nodes, dim]`
    fn propagate(&self, x: Tensor<2>) -> Tensor<2> {
        propagate(x, &self.adjacency)
    }
}

/// LightGCN.
#[derive(Module, Debug)]
pub struct LightGcn {
    /// `[users, factors]` layer-0 user embeddings.
    pub users: Embedding,
    /// `[items, factors]` layer-0 item embeddings.
    pub items: Embedding,
    layers: usize,
    reg: f64,
    #[module(skip)]
    loss: Loss,
    #[module(skip)]
    graph: Arc<Graph>,
}

impl LightGcnConfig {
    /// Builds the model over the graph of the training interactions.
    pub fn init(&self, init: &ModelInit, device: &Device) -> LightGcn {
        LightGcn {
            users: embedding(init.users, self.factors, self.init_std, device),
            items: embedding(init.items, self.factors, self.init_std, device),
            layers: self.layers,
            reg: self.reg,
            loss: init.pair_loss,
            graph: Arc::new(Graph::new(init.train, init.items)),
        }
    }
}

impl ModelFamily for kinds::LightGcn {
    type Config = LightGcnConfig;
    type Model = LightGcn;

    /// The paper's: 64 factors, 3 layers, λ = 1e-4.
    fn bench_preset() -> LightGcnConfig {
        LightGcnConfig {
            factors: 64,
            layers: 3,
            reg: 1e-4,
            init_std: 0.1,
        }
    }
}

impl ModelSettings for LightGcnConfig {
    fn input(&self) -> Input {
        Input::Pairs
    }

    fn validate(&self) -> Result<(), ModelError> {
        LightGcnSpec {
            factors: self.factors,
            layers: self.layers,
        }
        .validate()?;
        check_init_std(self.init_std)?;
        check_weight("reg", self.reg)
    }

    fn parameter_count(&self, users: usize, items: usize) -> u128 {
        size::sum([
            size::table(users, self.factors),
            size::table(items, self.factors),
        ])
    }

    /// The graph is built from the training interactions.
    fn built_from_train(&self) -> bool {
        true
    }
}

impl LightGcn {
    /// The final embeddings of every user and item: the mean of the layers' embeddings.
    ///
    /// # Shapes
    /// - output: (`[users, factors]`, `[items, factors]`)
    pub fn final_embeddings(&self) -> (Tensor<2>, Tensor<2>) {
        let ego = Tensor::cat(vec![self.users.weight.val(), self.items.weight.val()], 0);
        let mut layer = ego.clone();
        let mut sum = ego;
        for _ in 0..self.layers {
            layer = self.graph.propagate(layer);
            sum = sum + layer.clone();
        }
        let all = sum.div_scalar((self.layers + 1) as f64);
        let users = self.graph.users;
        let items = self.graph.adjacency.nodes - users;
        (all.clone().narrow(0, 0, users), all.narrow(0, users, items))
    }

    /// Scores of pairs from the final embeddings.
    ///
    /// # Shapes
    /// - users, items: `[pairs]`
    /// - output: `[pairs]`
    fn score_with(
        (users, items): &(Tensor<2>, Tensor<2>),
        user_ids: Tensor<1, Int>,
        item_ids: Tensor<1, Int>,
    ) -> Tensor<1> {
        (users.clone().select(0, user_ids) * items.clone().select(0, item_ids))
            .sum_dim(1)
            .squeeze_dim::<1>(1)
    }
}

impl Recommender for LightGcn {
    fn loss(&self, batch: &Batch, _step: usize) -> Tensor<1> {
        let batch = batch.pairs();
        let embeddings = self.final_embeddings();
        let scores = Self::score_with(
            &embeddings,
            batch.users.ids.clone(),
            batch.items.ids.clone(),
        );
        let objective = pair_loss(scores, batch, self.loss);
        // λ/2 ‖E⁽⁰⁾‖² over each example's user, positive and negatives, per example.
        let examples = match &batch.targets {
            PairTargets::Sampled { positives, .. } => *positives,
            PairTargets::Labels(labels) => labels.dims()[0],
        };
        let users = IdBatch::from(batch.users.ids.clone().slice(0..examples));
        let squared = |t: Tensor<2>| t.powi_scalar(2).sum();
        let penalty = (squared(lookup(&self.users, &users))
            + squared(lookup(&self.items, &batch.items)))
        .mul_scalar(self.reg / 2.0 / examples.max(1) as f64);
        objective + penalty
    }

    fn score_all(&self, query: &Query) -> Tensor<2> {
        let (users, items) = self.final_embeddings();
        users
            .select(0, query.ids().clone())
            .matmul(items.transpose())
    }

    fn score_pairs(&self, query: &Query, rows: Tensor<1, Int>, items: Tensor<1, Int>) -> Tensor<1> {
        let users = query.ids().clone().select(0, rows);
        Self::score_with(&self.final_embeddings(), users, items)
    }

    /// The final embeddings, which is all inference needs.
    fn export(&self) -> Export {
        let (users, items) = self.final_embeddings();
        let spec = LightGcnSpec {
            factors: self.users.weight.dims()[1],
            layers: self.layers,
        };
        Export {
            spec: ModelSpec::LightGcn(spec),
            tensors: vec![named("users.weight", users), named("items.weight", items)],
        }
    }
}
