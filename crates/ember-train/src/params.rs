//! Walking a model's parameters: their paths (how checkpoints name Adam's moments), their
//! first initialisation, the autodiff state an update must keep, and a fingerprint of their
//! values. A leaf: the optimiser, the checkpoints and the distributed sync all read it.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use ember_models::Model;

/// Each float parameter of `module` with its id, module path and element count, in visiting
/// order.
pub fn parameters<M: Module>(module: &M) -> Vec<(ParamId, String, usize)> {
    #[derive(Default)]
    struct Paths {
        path: Vec<String>,
        out: Vec<(ParamId, String, usize)>,
    }
    impl ModuleVisitor for Paths {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let n = param.val().shape().num_elements();
            self.out.push((param.id, self.path.join("."), n));
        }
    }
    let mut paths = Paths::default();
    module.visit(&mut paths);
    paths.out
}

/// `model` with every parameter initialised (burn initialises them lazily, at first use), in
/// the model's visiting order.
pub fn materialize(model: Model) -> Model {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Touch);
    model
}

/// A fingerprint of `model`'s weights (FNV-1a over their bits), to check that ranks agree.
pub fn weights_fingerprint(model: &Model) -> u64 {
    struct Hash(u64);
    impl ModuleVisitor for Hash {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let values = param
                .val()
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("f32");
            for v in values {
                for b in v.to_bits().to_le_bytes() {
                    self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
                }
            }
        }
    }
    let mut hash = Hash(0xcbf2_9ce4_8422_2325);
    model.visit(&mut hash);
    hash.0
}

/// A parameter's autodiff state, taken before its update and put back on the updated value
/// (as burn's optimisers do): gradient required, checkpointing strategy, distributed flag.
pub(crate) struct AutodiffState {
    require_grad: bool,
    checkpointing: Option<burn::tensor::GradientCheckpointingStrategy>,
    distributed: bool,
}

impl AutodiffState {
    pub(crate) fn of<const D: usize>(param: &Tensor<D>) -> Self {
        Self {
            require_grad: param.is_require_grad(),
            checkpointing: param.gradient_checkpointing_strategy(),
            distributed: param.is_distributed(),
        }
    }

    /// Lifts an updated value (on the inner backend) back onto the autodiff device.
    pub(crate) fn restore<const D: usize>(self, updated: Tensor<D>, id: ParamId) -> Tensor<D> {
        let mut param = Tensor::from_inner(updated);
        if let Some(strategy) = self.checkpointing {
            param = param.with_gradient_checkpointing_strategy(strategy);
        }
        if self.require_grad {
            param = param.require_grad();
        }
        if self.distributed {
            param = param.set_distributed(id);
        }
        param
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_models::{ModelConfig, ModelInit};

    fn mf(seed: u64, device: &Device) -> Model {
        let config: ModelConfig = toml::from_str("kind = \"mf\"\nfactors = 2").unwrap();
        let train = vec![vec![0u32, 1], vec![2], vec![1], vec![]];
        device.seed(seed);
        materialize(config.init(&ModelInit::new(3, &train), device))
    }

    /// Checkpoints name Adam's moments by these paths: a change of them makes older
    /// checkpoints resume without their moments.
    #[test]
    fn parameters_are_named_by_their_module_path() {
        let device = Device::flex().autodiff();
        let named: Vec<(String, usize)> = parameters(&mf(1, &device))
            .into_iter()
            .map(|(_, path, n)| (path, n))
            .collect();
        assert_eq!(
            named,
            [
                ("Mf.users.weight".to_string(), 8),
                ("Mf.items.weight".to_string(), 6)
            ]
        );
    }

    #[test]
    fn the_fingerprint_follows_the_weights() {
        let device = Device::flex().autodiff();
        let print = |seed| weights_fingerprint(&mf(seed, &device));
        assert_eq!(print(1), print(1));
        assert_ne!(print(1), print(2));
    }
}
