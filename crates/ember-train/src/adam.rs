//! Adam as ember trains with it: burn's update (and PyTorch's), in fewer operations.
//!
//! burn's `Adam` updates each parameter with about 13 tensor operations: NeuMF's 12 parameters
//! make some 160 operations a step, on top of the model's own. How that costs depends on the
//! device, so the same update has two layouts:
//!
//! - [`AdamLayout::Flat`] (GPUs): every parameter and gradient is flattened into one vector and
//!   the update is one set of tensor operations over it, which burn's fusion compiles into few
//!   kernels. A GPU step at recommender sizes is bound by the host time spent recording and
//!   launching operations, not by the GPU, so fewer operations is what counts.
//! - [`AdamLayout::Host`] (CPUs): each parameter is updated in one loop over its values, moments
//!   kept in host vectors. On a CPU every tensor operation is a pass over memory, and the
//!   embedding tables are updated whole every step, so 13 passes become one.
//!
//! Both compute, per element, with gradient g, step t and learning rate lr:
//! `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
//! `θ ← θ − lr · (m / (1−β₁ᵗ)) / (√v / √(1−β₂ᵗ) + ε)`,
//! with L2 weight decay `g ← g + λθ` first, as burn's `Adam` with `WeightDecayConfig` does.
//! The step count is the optimiser's, and a parameter that gets no gradient in a step (none of
//! ember's models has one) is updated as if its gradient were zero.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use std::collections::HashMap;

/// Adam's hyper-parameters (those of burn's `AdamConfig`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamSettings {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    /// L2 penalty added to the gradient (0 = none).
    pub weight_decay: f32,
}

impl Default for AdamSettings {
    /// PyTorch's defaults, which the NCF references use.
    fn default() -> Self {
        Self {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Where and how the update is computed (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdamLayout {
    /// All parameters as one vector, updated by tensor operations on the device.
    Flat,
    /// Each parameter updated in one loop on the host.
    Host,
}

impl AdamLayout {
    /// The layout for a backend (`device::is_gpu`).
    pub fn for_backend(name: &str) -> Self {
        if crate::device::is_gpu(name) {
            Self::Flat
        } else {
            Self::Host
        }
    }
}

/// The Adam optimiser over a whole module.
#[derive(Debug)]
pub struct Adam {
    settings: AdamSettings,
    layout: AdamLayout,
    /// Steps taken.
    time: i32,
    /// Flat layout: the parameters' ids in visiting order, and both moments as flat vectors.
    flat: Option<(Vec<ParamId>, Tensor<1>, Tensor<1>)>,
    /// Host layout: each parameter's moments.
    host: HashMap<ParamId, (Vec<f32>, Vec<f32>)>,
}

impl Adam {
    pub fn new(settings: AdamSettings, layout: AdamLayout) -> Self {
        Self {
            settings,
            layout,
            time: 0,
            flat: None,
            host: HashMap::new(),
        }
    }

    /// Updates `module` with `grads` at learning rate `lr`.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, mut grads: GradientsParams) -> M {
        self.time += 1;
        let s = self.settings;
        let t = self.time;
        // Scalars of the update: θ − step_size · m / (√v + eps_hat), which is the formula in
        // the module documentation multiplied through by √(1−β₂ᵗ).
        let bias_2_sqrt = (1.0 - (s.beta_2 as f64).powi(t)).sqrt();
        let step_size = lr * bias_2_sqrt / (1.0 - (s.beta_1 as f64).powi(t));
        let eps_hat = s.epsilon as f64 * bias_2_sqrt;
        match self.layout {
            AdamLayout::Flat => self.step_flat(module, &mut grads, step_size, eps_hat),
            AdamLayout::Host => module.map(&mut HostUpdate {
                grads: &mut grads,
                moments: &mut self.host,
                settings: s,
                step_size: step_size as f32,
                eps_hat: eps_hat as f32,
            }),
        }
    }

    fn step_flat<M: Module>(
        &mut self,
        module: M,
        grads: &mut GradientsParams,
        step_size: f64,
        eps_hat: f64,
    ) -> M {
        let s = self.settings;
        let mut gather = Gather {
            grads,
            ids: Vec::new(),
            values: Vec::new(),
            gradients: Vec::new(),
        };
        module.visit(&mut gather);
        let Gather {
            ids,
            values,
            gradients,
            ..
        } = gather;
        if values.is_empty() {
            return module;
        }
        let theta = Tensor::cat(values, 0);
        let mut g = Tensor::cat(gradients, 0);
        if s.weight_decay > 0.0 {
            g = g + theta.clone().mul_scalar(s.weight_decay);
        }
        let (m, v) = match self.flat.take() {
            Some((known, m, v)) if known == ids => (
                m.mul_scalar(s.beta_1) + g.clone().mul_scalar(1.0 - s.beta_1),
                v.mul_scalar(s.beta_2) + g.square().mul_scalar(1.0 - s.beta_2),
            ),
            // First step, or another module: moments start at zero.
            _ => (
                g.clone().mul_scalar(1.0 - s.beta_1),
                g.square().mul_scalar(1.0 - s.beta_2),
            ),
        };
        let theta = theta
            - m.clone()
                .div(v.clone().sqrt().add_scalar(eps_hat))
                .mul_scalar(step_size);
        self.flat = Some((ids, m, v));
        module.map(&mut Scatter { theta, offset: 0 })
    }
}

/// Collects every float parameter, flattened, with its gradient (zeros when it has none).
struct Gather<'a> {
    grads: &'a mut GradientsParams,
    ids: Vec<ParamId>,
    values: Vec<Tensor<1>>,
    gradients: Vec<Tensor<1>>,
}

impl ModuleVisitor for Gather<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val().inner();
        let n = value.shape().num_elements();
        let grad = self
            .grads
            .remove::<D>(param.id)
            .unwrap_or_else(|| value.zeros_like());
        self.ids.push(param.id);
        self.values.push(value.reshape([n]));
        self.gradients.push(grad.reshape([n]));
    }
}

/// Gives each parameter its part of the updated flat vector, in the order [`Gather`] read them.
struct Scatter {
    theta: Tensor<1>,
    offset: usize,
}

impl ModuleMapper for Scatter {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let shape = tensor.shape();
        let n = shape.num_elements();
        let updated = self
            .theta
            .clone()
            .slice(self.offset..self.offset + n)
            .reshape(shape);
        self.offset += n;
        let updated = AutodiffState::of(&tensor).restore(updated, id);
        Param::from_mapped_value(id, updated, mapper)
    }
}

/// A parameter's autodiff state, taken before its update and put back on the updated value
/// (as burn's optimisers do): gradient required, checkpointing strategy, distributed flag.
struct AutodiffState {
    require_grad: bool,
    checkpointing: Option<burn::tensor::GradientCheckpointingStrategy>,
    distributed: bool,
}

impl AutodiffState {
    fn of<const D: usize>(param: &Tensor<D>) -> Self {
        Self {
            require_grad: param.is_require_grad(),
            checkpointing: param.gradient_checkpointing_strategy(),
            distributed: param.is_distributed(),
        }
    }

    /// Lifts an updated value (on the inner backend) back onto the autodiff device.
    fn restore<const D: usize>(self, updated: Tensor<D>, id: ParamId) -> Tensor<D> {
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

/// Updates each parameter in one loop over its values on the host.
struct HostUpdate<'a> {
    grads: &'a mut GradientsParams,
    moments: &'a mut HashMap<ParamId, (Vec<f32>, Vec<f32>)>,
    settings: AdamSettings,
    step_size: f32,
    eps_hat: f32,
}

impl ModuleMapper for HostUpdate<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let device = tensor.device();
        let n = tensor.shape().num_elements();
        let state = AutodiffState::of(&tensor);
        // On CPU backends `into_data` hands over the buffer without a copy when nothing else
        // holds it.
        let mut theta = tensor.inner().into_data().convert::<f32>();
        let grad = self
            .grads
            .remove::<D>(id)
            .map(|g| g.into_data().convert::<f32>());
        let (m, v) = self
            .moments
            .entry(id)
            .or_insert_with(|| (vec![0.0; n], vec![0.0; n]));
        let values = theta.as_mut_slice::<f32>().expect("f32 after convert");
        let grad = grad
            .as_ref()
            .map(|g| g.as_slice::<f32>().expect("f32 after convert"));
        adam_update(
            values,
            grad,
            m,
            v,
            &self.settings,
            self.step_size,
            self.eps_hat,
        );
        let updated = Tensor::<D>::from_data(theta, &device.inner());
        Param::from_mapped_value(id, state.restore(updated, id), mapper)
    }
}

/// Values per piece of work when the host update runs on several threads.
const HOST_CHUNK: usize = 1 << 15;

/// The update of one parameter's values in place; `grad` `None` is a zero gradient. Large
/// parameters (embedding tables) are split over rayon's threads, the pool burn's CPU backend
/// uses too.
fn adam_update(
    theta: &mut [f32],
    grad: Option<&[f32]>,
    m: &mut [f32],
    v: &mut [f32],
    s: &AdamSettings,
    step_size: f32,
    eps_hat: f32,
) {
    let one = |theta: &mut f32, g: f32, m: &mut f32, v: &mut f32| {
        let g = g + s.weight_decay * *theta;
        *m = s.beta_1 * *m + (1.0 - s.beta_1) * g;
        *v = s.beta_2 * *v + (1.0 - s.beta_2) * g * g;
        *theta -= step_size * *m / (v.sqrt() + eps_hat);
    };
    let update = |theta: &mut [f32], grad: Option<&[f32]>, m: &mut [f32], v: &mut [f32]| {
        let moments = m.iter_mut().zip(v.iter_mut());
        match grad {
            Some(grad) => {
                for ((theta, &g), (m, v)) in theta.iter_mut().zip(grad).zip(moments) {
                    one(theta, g, m, v);
                }
            }
            None => {
                for (theta, (m, v)) in theta.iter_mut().zip(moments) {
                    one(theta, 0.0, m, v);
                }
            }
        }
    };
    if theta.len() <= HOST_CHUNK {
        return update(theta, grad, m, v);
    }
    use rayon::prelude::*;
    let grads: Vec<Option<&[f32]>> = match grad {
        Some(grad) => grad.chunks(HOST_CHUNK).map(Some).collect(),
        None => vec![None; theta.len().div_ceil(HOST_CHUNK)],
    };
    theta
        .par_chunks_mut(HOST_CHUNK)
        .zip(m.par_chunks_mut(HOST_CHUNK))
        .zip(v.par_chunks_mut(HOST_CHUNK))
        .zip(grads)
        .for_each(|(((theta, m), v), grad)| update(theta, grad, m, v));
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
    use burn::optim::AdamConfig;
    use burn::optim::decay::WeightDecayConfig;
    use burn::tensor::Distribution;

    /// A table, a linear layer with bias and a free-standing vector: parameters of ranks 1 and 2.
    #[derive(Module, Debug)]
    struct Probe {
        table: Embedding,
        layer: Linear,
        scale: Param<Tensor<1>>,
    }

    fn probe(device: &Device) -> Probe {
        Probe {
            table: EmbeddingConfig::new(7, 4).init(device),
            layer: LinearConfig::new(4, 3).init(device),
            scale: Param::from_tensor(Tensor::random([3], Distribution::Default, device)),
        }
    }

    /// A loss whose gradient differs per element (ids 0 and 6 repeated, 3 absent).
    fn loss(model: &Probe, device: &Device) -> Tensor<1> {
        let ids =
            Tensor::<1, Int>::from_data(TensorData::new(vec![0, 6, 6, 2, 0, 1, 5, 4], [8]), device);
        let x = model.table.weight.val().select(0, ids);
        let y = model.layer.forward(x) * model.scale.val().unsqueeze_dim::<2>(0);
        (y.clone() * y).sum() + model.layer.weight.val().abs().sum()
    }

    /// Every parameter's values, in visiting order.
    fn values(model: &Probe) -> Vec<f32> {
        [
            model.table.weight.val().try_into_vec_as::<f32>(),
            model.layer.weight.val().try_into_vec_as::<f32>(),
            model
                .layer
                .bias
                .as_ref()
                .expect("bias")
                .val()
                .try_into_vec_as::<f32>(),
            model.scale.val().try_into_vec_as::<f32>(),
        ]
        .into_iter()
        .flat_map(|v| v.expect("f32"))
        .collect()
    }

    fn train_with(
        mut model: Probe,
        mut step: impl FnMut(Probe, GradientsParams) -> Probe,
        device: &Device,
    ) -> Vec<f32> {
        for _ in 0..5 {
            let grads = GradientsParams::from_grads(loss(&model, device).backward(), &model);
            model = step(model, grads);
        }
        values(&model)
    }

    /// Both layouts give burn's `Adam` (with L2 weight decay and β₂ = 0.98) after five steps.
    #[test]
    fn both_layouts_match_burns_adam() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let initial = probe(&device);
        let settings = AdamSettings {
            beta_2: 0.98,
            weight_decay: 0.01,
            ..AdamSettings::default()
        };
        let lr = 0.05;
        let mut burns = AdamConfig::new()
            .with_epsilon(settings.epsilon)
            .with_beta_2(settings.beta_2)
            .with_weight_decay(Some(WeightDecayConfig::new(settings.weight_decay)))
            .init();
        let expected = train_with(initial.clone(), |m, g| burns.step(lr, m, g), &device);
        let start = values(&initial);
        for layout in [AdamLayout::Flat, AdamLayout::Host] {
            let mut ours = Adam::new(settings, layout);
            let got = train_with(initial.clone(), |m, g| ours.step(lr, m, g), &device);
            assert_eq!(got.len(), expected.len());
            for (k, (a, b)) in got.iter().zip(&expected).enumerate() {
                assert!(
                    (a - b).abs() < 1e-5,
                    "{layout:?}, value {k}: {a} vs burn's {b}"
                );
            }
            // The parameters moved (five steps of 0.05), so the comparison means something.
            let moved = got
                .iter()
                .zip(&start)
                .filter(|(a, b)| (*a - *b).abs() > 0.01)
                .count();
            assert!(
                moved > got.len() / 2,
                "{layout:?}: only {moved} values moved"
            );
        }
    }

    /// The updated parameters still take gradients: a second step changes them again.
    #[test]
    fn updated_parameters_stay_trainable() {
        let device = Device::flex().autodiff();
        device.seed(4);
        for layout in [AdamLayout::Flat, AdamLayout::Host] {
            let mut adam = Adam::new(AdamSettings::default(), layout);
            let mut model = probe(&device);
            for _ in 0..2 {
                let before = values(&model);
                let grads = GradientsParams::from_grads(loss(&model, &device).backward(), &model);
                assert_eq!(grads.len(), 4, "{layout:?}: every parameter has a gradient");
                model = adam.step(0.01, model, grads);
                assert_ne!(before, values(&model), "{layout:?}");
            }
        }
    }

    /// A parameter larger than one piece of threaded work is updated whole, every element by
    /// the formula, with and without a gradient.
    #[test]
    fn threaded_host_update_covers_every_value() {
        let n = 3 * HOST_CHUNK + 5;
        let s = AdamSettings {
            weight_decay: 0.1,
            ..AdamSettings::default()
        };
        let (step_size, eps_hat) = (0.01f32, 1e-6f32);
        let grad: Vec<f32> = (0..n)
            .map(|k| ((k * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        for with_grad in [true, false] {
            let mut theta: Vec<f32> = (0..n).map(|k| (k % 13) as f32 / 13.0).collect();
            let (mut m, mut v) = (vec![0.5f32; n], vec![0.25f32; n]);
            let start = theta.clone();
            adam_update(
                &mut theta,
                with_grad.then_some(grad.as_slice()),
                &mut m,
                &mut v,
                &s,
                step_size,
                eps_hat,
            );
            for k in [0, HOST_CHUNK - 1, HOST_CHUNK, 2 * HOST_CHUNK + 17, n - 1] {
                let g = if with_grad { grad[k] } else { 0.0 } + s.weight_decay * start[k];
                let m_k = s.beta_1 * 0.5 + (1.0 - s.beta_1) * g;
                let v_k = s.beta_2 * 0.25 + (1.0 - s.beta_2) * g * g;
                let expected = start[k] - step_size * m_k / (v_k.sqrt() + eps_hat);
                assert_eq!((theta[k], m[k], v[k]), (expected, m_k, v_k), "element {k}");
            }
            assert!(
                theta.iter().zip(&start).all(|(a, b)| a != b),
                "every value moved"
            );
        }
    }
}
