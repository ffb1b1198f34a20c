//! Adam as ember trains with it: burn's update (and PyTorch's), in fewer operations.
//!
//! burn's `Adam` updates each parameter with about 13 tensor operations: NeuMF's 12 parameters
//! make some 156 operations a step, on top of the model's own. How that costs depends on the
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
//! As in burn, a parameter that gets no gradient in a step keeps its value and its moments. The
//! step count t is the optimiser's, where burn keeps one per parameter: the two agree whenever
//! every parameter gets a gradient at every step, as in all of ember's models.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use std::collections::HashMap;

use crate::params::{AutodiffState, parameters};

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

/// The Adam optimiser over a whole module.
#[derive(Debug)]
pub struct Adam {
    settings: AdamSettings,
    layout: AdamLayout,
    /// Steps taken.
    steps: i32,
    /// Flat layout: the updated parameters (id and length, in visiting order), and both
    /// moments as flat vectors in that order.
    flat: Option<(Vec<(ParamId, usize)>, Tensor<1>, Tensor<1>)>,
    /// Flat layout: moments of parameters that had no gradient at the last step.
    parked: HashMap<ParamId, (Tensor<1>, Tensor<1>)>,
    /// Host layout: each parameter's moments.
    host: HashMap<ParamId, (Vec<f32>, Vec<f32>)>,
}

impl Adam {
    pub fn new(settings: AdamSettings, layout: AdamLayout) -> Self {
        Self {
            settings,
            layout,
            steps: 0,
            flat: None,
            parked: HashMap::new(),
            host: HashMap::new(),
        }
    }

    /// Updates `module` with `grads` at learning rate `lr`.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, mut grads: GradientsParams) -> M {
        self.steps += 1;
        let s = self.settings;
        let t = self.steps;
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
            params: Vec::new(),
            values: Vec::new(),
            gradients: Vec::new(),
        };
        module.visit(&mut gather);
        let Gather {
            params,
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
            Some((known, m, v)) => {
                let (m, v) = if known == params {
                    (m, v)
                } else {
                    // Other parameters have gradients this step: carry each one's moments over.
                    self.rearrange(&known, m, v, &params)
                };
                (
                    m.mul_scalar(s.beta_1) + g.clone().mul_scalar(1.0 - s.beta_1),
                    v.mul_scalar(s.beta_2) + g.square().mul_scalar(1.0 - s.beta_2),
                )
            }
            // The first step: moments start at zero.
            None => (
                g.clone().mul_scalar(1.0 - s.beta_1),
                g.square().mul_scalar(1.0 - s.beta_2),
            ),
        };
        let theta = theta
            - m.clone()
                .div(v.clone().sqrt().add_scalar(eps_hat))
                .mul_scalar(step_size);
        let mut offsets = HashMap::new();
        let mut offset = 0;
        for &(id, n) in &params {
            offsets.insert(id, offset);
            offset += n;
        }
        self.flat = Some((params, m, v));
        module.map(&mut Scatter { theta, offsets })
    }
}

impl Adam {
    /// Both flat moments laid out for the `known` parameters, laid out again for the `wanted`
    /// ones. The moments of a known parameter not wanted now are kept aside until it is; a
    /// parameter never seen before starts at zero.
    fn rearrange(
        &mut self,
        known: &[(ParamId, usize)],
        m: Tensor<1>,
        v: Tensor<1>,
        wanted: &[(ParamId, usize)],
    ) -> (Tensor<1>, Tensor<1>) {
        let mut offset = 0;
        for &(id, n) in known {
            let part = |t: &Tensor<1>| t.clone().slice(offset..offset + n);
            self.parked.insert(id, (part(&m), part(&v)));
            offset += n;
        }
        let (ms, vs) = wanted
            .iter()
            .map(|&(id, n)| match self.parked.remove(&id) {
                Some((m, v)) if m.dims()[0] == n => (m, v),
                _ => (
                    Tensor::zeros([n], &m.device()),
                    Tensor::zeros([n], &m.device()),
                ),
            })
            .unzip();
        (Tensor::cat(ms, 0), Tensor::cat(vs, 0))
    }
}

/// Adam's moments by parameter path, as checkpoints keep them (parameter ids are not kept when
/// a model is saved and loaded; paths are).
pub type Moments = Vec<(String, Vec<f32>, Vec<f32>)>;

impl Adam {
    /// Steps taken: the `t` of the bias corrections.
    pub fn steps(&self) -> i32 {
        self.steps
    }

    /// Each of `module`'s parameters' moments (those the optimiser has), by path.
    pub fn moments<M: Module>(&self, module: &M) -> Moments {
        let mut by_id: HashMap<ParamId, (Vec<f32>, Vec<f32>)> = HashMap::new();
        match self.layout {
            AdamLayout::Host => {
                for (id, (m, v)) in &self.host {
                    by_id.insert(*id, (m.clone(), v.clone()));
                }
            }
            AdamLayout::Flat => {
                let host = |t: &Tensor<1>| t.clone().try_into_vec_as::<f32>().expect("f32");
                if let Some((params, m, v)) = &self.flat {
                    let (m, v) = (host(m), host(v));
                    let mut offset = 0;
                    for &(id, n) in params {
                        let part = |x: &[f32]| x[offset..offset + n].to_vec();
                        by_id.insert(id, (part(&m), part(&v)));
                        offset += n;
                    }
                }
                for (id, (m, v)) in &self.parked {
                    by_id.insert(*id, (host(m), host(v)));
                }
            }
        }
        parameters(module)
            .into_iter()
            .filter_map(|(id, path, _)| by_id.remove(&id).map(|(m, v)| (path, m, v)))
            .collect()
    }

    /// An optimiser for `module` that continues from a checkpoint's step count and moments.
    /// `device` is the module's.
    pub fn restore<M: Module>(
        settings: AdamSettings,
        layout: AdamLayout,
        module: &M,
        steps: i32,
        moments: Moments,
        device: &Device,
    ) -> Self {
        let mut adam = Self::new(settings, layout);
        adam.steps = steps;
        let mut by_path: HashMap<String, (Vec<f32>, Vec<f32>)> = moments
            .into_iter()
            .map(|(path, m, v)| (path, (m, v)))
            .collect();
        let mut flat = (Vec::new(), Vec::new(), Vec::new());
        for (id, path, n) in parameters(module) {
            let Some((m, v)) = by_path.remove(&path).filter(|(m, _)| m.len() == n) else {
                continue;
            };
            match layout {
                AdamLayout::Host => {
                    adam.host.insert(id, (m, v));
                }
                // In visiting order, as `step_flat` gathers them: the next step finds its own
                // layout.
                AdamLayout::Flat => {
                    flat.0.push((id, n));
                    flat.1.extend(m);
                    flat.2.extend(v);
                }
            }
        }
        if layout == AdamLayout::Flat && !flat.0.is_empty() {
            let inner = device.clone().without_autodiff();
            let tensor = |values: Vec<f32>| {
                let n = values.len();
                Tensor::<1>::from_data(TensorData::new(values, [n]), &inner)
            };
            adam.flat = Some((flat.0, tensor(flat.1), tensor(flat.2)));
        }
        adam
    }
}

/// Collects every float parameter that has a gradient, flattened, with its gradient.
struct Gather<'a> {
    grads: &'a mut GradientsParams,
    params: Vec<(ParamId, usize)>,
    values: Vec<Tensor<1>>,
    gradients: Vec<Tensor<1>>,
}

impl ModuleVisitor for Gather<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(grad) = self.grads.remove::<D>(param.id) else {
            return; // left as it is, as burn's optimisers do
        };
        let value = param.val().inner();
        let n = value.shape().num_elements();
        let grad = grad.to_device(&value.device());
        self.params.push((param.id, n));
        self.values.push(value.reshape([n]));
        self.gradients.push(grad.reshape([n]));
    }
}

/// Gives each updated parameter its part of the updated flat vector.
struct Scatter {
    theta: Tensor<1>,
    /// Where each updated parameter starts in `theta`.
    offsets: HashMap<ParamId, usize>,
}

impl ModuleMapper for Scatter {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(&offset) = self.offsets.get(&param.id) else {
            return param; // no gradient this step
        };
        let (id, tensor, mapper) = param.consume();
        let shape = tensor.shape();
        let n = shape.num_elements();
        let updated = self.theta.clone().slice(offset..offset + n).reshape(shape);
        let updated = AutodiffState::of(&tensor).restore(updated, id);
        Param::from_mapped_value(id, updated, mapper)
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
        let Some(grad) = self.grads.remove::<D>(param.id) else {
            return param; // left as it is, as burn's optimisers do
        };
        let (id, tensor, mapper) = param.consume();
        let device = tensor.device();
        let n = tensor.shape().num_elements();
        let state = AutodiffState::of(&tensor);
        // On CPU backends `into_data` hands over the buffer without a copy when nothing else
        // holds it.
        let mut theta = tensor.inner().into_data().convert::<f32>();
        let grad = grad.into_data().convert::<f32>();
        let (m, v) = self
            .moments
            .entry(id)
            .or_insert_with(|| (vec![0.0; n], vec![0.0; n]));
        adam_update(
            theta.as_mut_slice::<f32>().expect("f32 after convert"),
            grad.as_slice::<f32>().expect("f32 after convert"),
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

/// The update of one parameter's values in place. Large parameters (embedding tables) are
/// split over rayon's threads, the pool burn's CPU backend uses too.
fn adam_update(
    theta: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    s: &AdamSettings,
    step_size: f32,
    eps_hat: f32,
) {
    let update = |theta: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32]| {
        adam_update_widest(theta, grad, m, v, s, step_size, eps_hat)
    };
    if theta.len() <= HOST_CHUNK {
        return update(theta, grad, m, v);
    }
    use rayon::prelude::*;
    theta
        .par_chunks_mut(HOST_CHUNK)
        .zip(grad.par_chunks(HOST_CHUNK))
        .zip(m.par_chunks_mut(HOST_CHUNK))
        .zip(v.par_chunks_mut(HOST_CHUNK))
        .for_each(|(((theta, grad), m), v)| update(theta, grad, m, v));
}

ember_models::vectorised!(avx512,
    /// [`adam_update_values`] compiled for the widest vectors this CPU has. The crate is built
    /// for baseline x86-64 (4-wide SSE); with AVX-512 the loop's square roots and divisions run
    /// 16 wide. The values are the same bit for bit: Rust never contracts `a * b + c` into a
    /// fused multiply-add, and square root and division are exactly rounded at every width.
    fn adam_update_widest(
        theta: &mut [f32],
        grad: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        s: &AdamSettings,
        step_size: f32,
        eps_hat: f32,
    ) => adam_update_values;
);

/// Adam's formula over matching slices of values, gradients and moments.
#[inline(always)]
fn adam_update_values(
    theta: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    s: &AdamSettings,
    step_size: f32,
    eps_hat: f32,
) {
    let moments = m.iter_mut().zip(v.iter_mut());
    for ((theta, &g), (m, v)) in theta.iter_mut().zip(grad).zip(moments) {
        let g = g + s.weight_decay * *theta;
        *m = s.beta_1 * *m + (1.0 - s.beta_1) * g;
        *v = s.beta_2 * *v + (1.0 - s.beta_2) * g * g;
        *theta -= step_size * *m / (v.sqrt() + eps_hat);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
    use burn::optim::AdamConfig;
    use burn::optim::decay::WeightDecayConfig;
    use burn::tensor::Distribution;

    /// A table, a linear layer with bias and a free-standing vector (parameters of ranks 1 and
    /// 2), and a parameter the loss does not use (no gradient).
    #[derive(Module, Debug)]
    struct Probe {
        table: Embedding,
        layer: Linear,
        scale: Param<Tensor<1>>,
        unused: Param<Tensor<1>>,
    }

    fn probe(device: &Device) -> Probe {
        Probe {
            table: EmbeddingConfig::new(7, 4).init(device),
            layer: LinearConfig::new(4, 3).init(device),
            scale: Param::from_tensor(Tensor::random([3], Distribution::Default, device)),
            unused: Param::from_tensor(Tensor::random([2], Distribution::Default, device)),
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
            model.unused.val().try_into_vec_as::<f32>(),
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

    /// Both layouts give burn's `Adam` (with L2 weight decay and β₂ = 0.98) after five steps,
    /// the parameter without a gradient left as it was.
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
            let unused = got.len() - 2..got.len();
            assert_eq!(
                got[unused.clone()],
                start[unused],
                "{layout:?}: no gradient, no change"
            );
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
    /// the scalar formula, bit for bit.
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
        let mut theta: Vec<f32> = (0..n).map(|k| (k % 13) as f32 / 13.0).collect();
        let (mut m, mut v) = (vec![0.5f32; n], vec![0.25f32; n]);
        let start = theta.clone();
        adam_update(&mut theta, &grad, &mut m, &mut v, &s, step_size, eps_hat);
        // Every element: the update runs in the CPU's widest vectors, with scalar tails.
        for k in 0..n {
            let g = grad[k] + s.weight_decay * start[k];
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

    /// A parameter without a gradient in one step (the second of three) is left as it is and
    /// keeps its moments for the next step, as with burn's `Adam`. burn counts steps per
    /// parameter, so the skipped parameter's third update uses t = 2 there and t = 3 here:
    /// values are compared with burn's after the second step, and the two layouts with each
    /// other after the third.
    #[test]
    fn a_step_without_a_parameters_gradient_leaves_it_and_its_moments() {
        let device = Device::flex().autodiff();
        device.seed(5);
        let initial = probe(&device);
        let drop_scale = |model: &Probe, step: usize, mut grads: GradientsParams| {
            if step == 1 {
                grads.remove::<1>(model.scale.id);
            }
            grads
        };
        let lr = 0.05;
        let run = |step_fn: &mut dyn FnMut(Probe, GradientsParams) -> Probe, steps: usize| {
            let mut model = initial.clone();
            let mut after = Vec::new();
            for step in 0..steps {
                let grads = GradientsParams::from_grads(loss(&model, &device).backward(), &model);
                let grads = drop_scale(&model, step, grads);
                model = step_fn(model, grads);
                after.push(values(&model));
            }
            after
        };
        let mut burns = AdamConfig::new().with_epsilon(1e-8).init();
        let expected = run(&mut |m, g| burns.step(lr, m, g), 2);
        let scale = 7 * 4 + 4 * 3 + 3..7 * 4 + 4 * 3 + 3 + 3; // the scale's values
        assert_eq!(expected[0][scale.clone()], expected[1][scale.clone()]);
        let mut third = Vec::new();
        for layout in [AdamLayout::Flat, AdamLayout::Host] {
            let mut ours = Adam::new(AdamSettings::default(), layout);
            let got = run(&mut |m, g| ours.step(lr, m, g), 3);
            for (a, b) in got[1].iter().zip(&expected[1]) {
                assert!((a - b).abs() < 1e-5, "{layout:?}: {a} vs burn's {b}");
            }
            assert_ne!(got[1][scale.clone()], got[2][scale.clone()], "{layout:?}");
            third.push(got[2].clone());
        }
        // The host layout keeps each parameter's moments in a map; the flat one sets a skipped
        // parameter's aside and must bring them back for the third step.
        for (a, b) in third[0].iter().zip(&third[1]) {
            assert!(
                (a - b).abs() < 1e-5,
                "flat {a} vs host {b} after the third step"
            );
        }
    }

    /// A table and a vector (lookups, products and sums: no matmul, which lavapipe's autotune
    /// takes minutes to compile).
    #[cfg(feature = "wgpu")]
    #[derive(Module, Debug)]
    struct Lookups {
        table: Embedding,
        scale: Param<Tensor<1>>,
    }

    /// Five flat-layout steps on wgpu (burn's fusion and CubeCL kernels) give the host layout's
    /// values on flex. Runs when `EMBER_TEST_WGPU` is set (CI: Mesa's lavapipe).
    #[cfg(feature = "wgpu")]
    #[test]
    fn flat_layout_on_wgpu_matches_host_layout_on_flex() {
        if std::env::var_os("EMBER_TEST_WGPU").is_none() {
            let reason = "set EMBER_TEST_WGPU=1 to run on a Vulkan device (CI: Mesa lavapipe)";
            // CI sets this: a missing Vulkan device fails instead of skipping.
            assert!(
                std::env::var_os("EMBER_REQUIRE_TEST_INPUTS").is_none(),
                "{reason}; EMBER_REQUIRE_TEST_INPUTS is set"
            );
            eprintln!("skipped: {reason}");
            return;
        }
        let table: Vec<f32> = (0..9 * 4)
            .map(|k| ((k * 37) % 17) as f32 / 17.0 - 0.5)
            .collect();
        let run = |device: Device, layout: AdamLayout| {
            let mut model = Lookups {
                table: Embedding {
                    weight: Param::from_tensor(Tensor::from_data(
                        TensorData::new(table.clone(), [9, 4]),
                        &device,
                    )),
                },
                scale: Param::from_tensor(Tensor::from_data([0.5f32, -1.0, 2.0, 1.5], &device)),
            };
            let ids = Tensor::<1, Int>::from_data(
                TensorData::new(vec![0, 8, 8, 3, 0, 1, 5], [7]),
                &device,
            );
            let mut adam = Adam::new(
                AdamSettings {
                    weight_decay: 0.01,
                    ..AdamSettings::default()
                },
                layout,
            );
            for _ in 0..5 {
                let rows = model.table.weight.val().select(0, ids.clone());
                let y = rows * model.scale.val().unsqueeze_dim::<2>(0);
                let loss = (y.clone() * y).sum() + model.scale.val().sum();
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = adam.step(0.05, model, grads);
            }
            let mut values = model
                .table
                .weight
                .val()
                .try_into_vec_as::<f32>()
                .expect("f32");
            values.extend(model.scale.val().try_into_vec_as::<f32>().expect("f32"));
            values
        };
        let gpu = run(
            Device::wgpu(DeviceKind::DefaultDevice).autodiff(),
            AdamLayout::Flat,
        );
        let cpu = run(Device::flex().autodiff(), AdamLayout::Host);
        assert_eq!(gpu.len(), cpu.len());
        for (k, (a, b)) in gpu.iter().zip(&cpu).enumerate() {
            assert!((a - b).abs() < 1e-5, "value {k}: wgpu {a} vs flex {b}");
        }
        assert!(
            gpu.iter()
                .zip(&table)
                .filter(|(a, b)| (*a - *b).abs() > 0.01)
                .count()
                > 10
        );
    }
}
