//! A trained model's weights as named f32 arrays, for the export writer. Names are the module
//! paths, as burn's own records and candle-transformers name them (`gmf_users.weight`,
//! `tower.layers.0.bias`, `blocks.1.attention.query.weight`): the struct fields are the
//! schema on this side, and ember-infer's loader names the same paths once.

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

/// One named tensor: `(name, shape, row-major values)`.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// Every float parameter of `module`, named by its path.
pub fn named_parameters<M: Module>(module: &M) -> Vec<NamedTensor> {
    let mut collector = Collector::default();
    module.visit(&mut collector);
    collector.tensors
}

/// The values of a tensor with its shape.
pub fn named<const D: usize>(name: impl Into<String>, tensor: Tensor<D>) -> NamedTensor {
    let shape = tensor.dims().to_vec();
    (
        name.into(),
        shape,
        tensor.try_into_vec_as::<f32>().expect("float tensor"),
    )
}

#[derive(Default)]
struct Collector {
    path: Vec<String>,
    tensors: Vec<NamedTensor>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.tensors.push(named(self.path.join("."), param.val()));
    }
}
