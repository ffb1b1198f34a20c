#![allow(deprecated)] // burn-ndarray is deprecated, and still one of the backends ember offers.
//! Propagation over a normalised, symmetric graph (`y = Â x`, LightGCN's layer) as a backend
//! operation with its own backward pass.
//!
//! On the CPU backends it is a sparse product over the graph's rows (CSR), rows in parallel,
//! each row's edges added in a fixed order: one pass over the edges, no `[edges, dim]`
//! intermediate. On the GPU (and as the default) it is a gather of the sources' rows, scaled by
//! the edge weights, and a scatter-add into the targets. Â is symmetric, so the gradient is the
//! same product again: `∂L/∂x = Âᵀ ∂L/∂y = Â ∂L/∂y`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;
use rayon::prelude::*;
use std::sync::Arc;

use crate::host::HostTensors;

/// A weighted graph over `nodes` nodes whose adjacency is symmetric, by target node: the edges
/// into node `t` are `offsets[t]..offsets[t + 1]` of `sources` and `weights`.
#[derive(Debug, Clone, PartialEq)]
pub struct Adjacency {
    /// Nodes.
    pub nodes: usize,
    /// `[nodes + 1]`: where each node's edges start.
    pub offsets: Vec<usize>,
    /// Each edge's source node.
    pub sources: Vec<i32>,
    /// Each edge's target node (the row it belongs to).
    pub targets: Vec<i32>,
    /// Each edge's weight.
    pub weights: Vec<f32>,
}

impl Adjacency {
    /// `Â x` on the host, `x` row-major `[nodes, dim]`.
    pub fn multiply(&self, x: &[f32], dim: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; self.nodes * dim];
        out.par_chunks_mut(dim.max(1))
            .enumerate()
            .for_each(|(t, row)| {
                for e in self.offsets[t]..self.offsets[t + 1] {
                    let (s, w) = (self.sources[e] as usize, self.weights[e]);
                    for (o, v) in row.iter_mut().zip(&x[s * dim..(s + 1) * dim]) {
                        *o += w * v;
                    }
                }
            });
        out
    }
}

/// `Â x` on the host, for the CPU backends (their tensors already live in host memory).
fn host_propagate<B: HostTensors>(x: FloatTensor<B>, graph: &Adjacency) -> FloatTensor<B> {
    let shape = x.shape();
    let out = B::read(&x, |input| graph.multiply(input, shape[1]));
    B::write(out, shape, &x)
}

/// The propagation as a backend operation, so that autodiff can be given its own backward.
#[backend_extension(
    Autodiff,
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Cube: cfg(any(feature = "wgpu", feature = "vulkan"))
)]
pub trait PropagateOps: Backend {
    /// `Â x` for `x` of shape `[nodes, dim]`: by default a gather and a scatter-add over the
    /// edges (the GPU backends).
    fn propagate(x: FloatTensor<Self>, graph: Arc<Adjacency>) -> FloatTensor<Self> {
        let device = x.device();
        let shape = x.shape();
        let (nodes, dim) = (shape[0], shape[1]);
        let dtype = x.dtype();
        let edges = graph.sources.len();
        let ids = |v: &[i32]| Self::int_from_data(TensorData::new(v.to_vec(), [edges]), &device);
        let weights = Self::float_from_data(
            TensorData::new(graph.weights.clone(), [edges, 1]).convert_dtype(dtype),
            &device,
        );
        let messages = Self::float_mul(
            Self::float_select(x, 0, ids(&graph.sources)),
            Self::float_expand(weights, [edges, dim].into()),
        );
        let zeros = Self::float_zeros([nodes, dim].into(), &device, dtype.into());
        Self::float_select_assign(
            zeros,
            0,
            ids(&graph.targets),
            messages,
            IndexingUpdateOp::Add,
        )
    }
}

#[cfg(feature = "flex")]
impl PropagateOps for burn::backend::Flex {
    fn propagate(x: FloatTensor<Self>, graph: Arc<Adjacency>) -> FloatTensor<Self> {
        host_propagate::<Self>(x, &graph)
    }
}
#[cfg(feature = "ndarray")]
impl PropagateOps for burn::backend::NdArray {
    fn propagate(x: FloatTensor<Self>, graph: Arc<Adjacency>) -> FloatTensor<Self> {
        host_propagate::<Self>(x, &graph)
    }
}
#[cfg(any(feature = "wgpu", feature = "vulkan"))]
impl PropagateOps for burn::backend::Cube {}

impl<B: PropagateOps, C: CheckpointStrategy> PropagateOps for Autodiff<B, C> {
    fn propagate(x: FloatTensor<Self>, graph: Arc<Adjacency>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct Propagate;

        impl<B: PropagateOps> Backward<B, 1> for Propagate {
            type State = Arc<Adjacency>;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let graph = ops.state;
                // Â is symmetric: the gradient is Â times the output's gradient.
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::propagate(grad, graph)
                });
            }
        }

        let (x, node) = x.into_parts();
        match Propagate.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let output = B::propagate(x, graph.clone());
                prep.finish(graph, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::propagate(x, graph)),
        }
    }
}

/// `Â x`.
///
/// # Shapes
/// - x: `[nodes, dim]`
/// - output: `[nodes, dim]`
pub fn propagate(x: Tensor<2>, graph: &Arc<Adjacency>) -> Tensor<2> {
    let output =
        <burn::backend::Dispatch as PropagateOps>::propagate(x.into_dispatch(), graph.clone());
    Tensor::from_dispatch(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3-node path 0 – 1 – 2 with weights 0.5 and 2.
    fn path() -> Adjacency {
        Adjacency {
            nodes: 3,
            offsets: vec![0, 1, 3, 4],
            sources: vec![1, 0, 2, 1],
            targets: vec![0, 1, 1, 2],
            weights: vec![0.5, 0.5, 2.0, 2.0],
        }
    }

    #[test]
    fn host_product_is_the_weighted_sum_of_neighbours() {
        let x = [1.0, 10.0, 2.0, 20.0, 3.0, 30.0];
        assert_eq!(
            path().multiply(&x, 2),
            vec![1.0, 10.0, 6.5, 65.0, 4.0, 40.0]
        );
    }

    #[test]
    fn propagation_and_its_gradient_match_the_dense_product() {
        let device = Device::flex().autodiff();
        let graph = Arc::new(path());
        let dense =
            Tensor::<2>::from_floats([[0.0, 0.5, 0.0], [0.5, 0.0, 2.0], [0.0, 2.0, 0.0]], &device);
        let values = [[1.0, -1.0], [2.0, 0.5], [-3.0, 4.0]];
        let x = Tensor::<2>::from_floats(values, &device).require_grad();
        let y = propagate(x.clone(), &graph);
        let expected = dense.clone().matmul(x.clone().detach());
        y.clone()
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Default::default());
        // L = Σ y ⊙ c: ∂L/∂x = Âᵀ c.
        let c = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], &device);
        let grads = (y * c.clone()).sum().backward();
        let grad = x.grad(&grads).expect("x has a gradient");
        grad.into_data().assert_approx_eq::<f32>(
            &dense.transpose().matmul(c).inner().into_data(),
            Default::default(),
        );
    }
}
