//! Building blocks shared by every model. Embedding lookups and dense layers go through here, so
//! that a faster formulation (e.g. a custom embedding-gradient kernel on the GPU) changes one place.

use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::Recommender;

/// An embedding table initialised with N(0, std²).
pub fn embedding(rows: usize, dim: usize, std: f64, device: &Device) -> Embedding {
    EmbeddingConfig::new(rows, dim)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device)
}

/// Looks up rows of an embedding table.
///
/// # Shapes
/// - ids: `[batch]`
/// - output: `[batch, dim]`
pub fn lookup(table: &Embedding, ids: Tensor<1, Int>) -> Tensor<2> {
    table.weight.val().select(0, ids)
}

/// A stack of ReLU dense layers (`sizes[0] → sizes[1] → …`).
#[derive(Module, Debug)]
pub struct Tower {
    layers: Vec<Linear>,
}

impl Tower {
    /// Layers between consecutive sizes.
    pub fn new(sizes: &[usize], device: &Device) -> Self {
        let layers = sizes
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect();
        Self { layers }
    }

    /// The dense layers, first to last.
    pub fn layers(&self) -> &[Linear] {
        &self.layers
    }

    /// Applies every layer with a ReLU after each.
    ///
    /// # Shapes
    /// - input: `[batch, sizes[0]]`
    /// - output: `[batch, sizes[last]]`
    pub fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        for layer in &self.layers {
            x = relu(layer.forward(x));
        }
        x
    }
}

/// Scores every item for each user by scoring all (user, item) pairs: for models with no
/// cheaper factorised form.
///
/// # Shapes
/// - users: `[batch]`
/// - output: `[batch, num_items]`
pub fn score_all_pairs<M: Recommender + ?Sized>(model: &M, users: Tensor<1, Int>) -> Tensor<2> {
    let batch = users.dims()[0];
    let n = model.num_items();
    let (u, i) = all_pairs(users, n);
    model.score_pairs(u, i).reshape([batch, n])
}

/// Repeats each user once per item and tiles the items, so that a pair model can score every
/// item: returns `(users, items)` of length `batch * num_items`, user-major.
///
/// # Shapes
/// - users: `[batch]`
/// - output: `[batch * num_items]`, `[batch * num_items]`
pub fn all_pairs(users: Tensor<1, Int>, num_items: usize) -> (Tensor<1, Int>, Tensor<1, Int>) {
    let batch = users.dims()[0];
    let device = users.device();
    let users = users
        .unsqueeze_dim::<2>(1)
        .repeat_dim(1, num_items)
        .reshape([batch * num_items]);
    let items = Tensor::<1, Int>::arange(0..num_items as i64, &device).repeat_dim(0, batch);
    (users, items)
}
