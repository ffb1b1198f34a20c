//! Building blocks shared by every model. Embedding lookups and dense layers go through here, so
//! that a faster formulation changes one place: embedding lookups live in [`crate::lookup`].

use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::DenseSplit;

/// An embedding table initialised with N(0, std²).
pub fn embedding(rows: usize, dim: usize, std: f64, device: &Device) -> Embedding {
    EmbeddingConfig::new(rows, dim)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device)
}

/// A linear layer with Xavier-uniform weights (the autoencoder papers' initialisation).
pub fn xavier_linear(input: usize, output: usize, device: &Device) -> Linear {
    LinearConfig::new(input, output)
        .with_initializer(Initializer::XavierUniform { gain: 1.0 })
        .init(device)
}

/// How many chunks a batch of `rows` rows is split into: the largest power of two up to
/// `split.groups` that divides `rows` and leaves chunks of at least `split.min_rows` rows.
fn split_k_groups(rows: usize, split: DenseSplit) -> usize {
    let most = split.groups.max(1);
    let mut groups = 1usize << (usize::BITS - 1 - most.leading_zeros()); // rounded down
    while groups > 1 && (!rows.is_multiple_of(groups) || rows / groups < split.min_rows.max(1)) {
        groups /= 2;
    }
    groups
}

/// A linear layer `x W + b`, computed as a batched product over chunks of the batch.
///
/// The weight gradient `xᵀ dy` has the batch as its inner dimension. As one product, GPU matmul
/// kernels give each output tile to one unit that loops over the whole batch; over `g` chunks it
/// is `g` products of `rows / g` (a split-K product) and a sum of `g` small matrices, which
/// keeps the GPU busy. The values equal `linear.forward(x)`'s up to rounding. How to split is
/// the device's setting (`split`), given to the model when it is built.
///
/// # Shapes
/// - x: `[rows, in]`
/// - output: `[rows, out]`
pub fn dense(linear: &Linear, x: Tensor<2>, split: DenseSplit) -> Tensor<2> {
    let [rows, input] = x.dims();
    let groups = split_k_groups(rows, split);
    if groups == 1 {
        return linear.forward(x);
    }
    let weight = linear.weight.val(); // [in, out]
    let output = weight.dims()[1];
    let y = x
        .reshape([groups, rows / groups, input])
        .matmul(weight.unsqueeze_dim::<3>(0)); // [groups, rows / groups, out]
    let y = match &linear.bias {
        Some(bias) => y + bias.val().reshape([1, 1, output]),
        None => y,
    };
    y.reshape([rows, output])
}

/// A stack of ReLU dense layers (`sizes[0] → sizes[1] → …`).
#[derive(Module, Debug)]
pub struct Tower {
    layers: Vec<Linear>,
    #[module(skip)]
    split: DenseSplit,
}

impl Tower {
    /// Layers between consecutive sizes.
    pub fn new(sizes: &[usize], split: DenseSplit, device: &Device) -> Self {
        let layers = sizes
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect();
        Self { layers, split }
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
            x = relu(dense(layer, x, self.split));
        }
        x
    }
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
