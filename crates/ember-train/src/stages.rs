//! The stages of a run, in order, as its model asks for them: the model alone, or the stages
//! it is pre-trained on and then the model assembled from them (NeuMF from GMF and MLP);
//! with `train.refit`, each of them once more on training + validation data, for the epoch
//! count validation chose. A model fitted when it is built (`fitted_at_init`) trains for no
//! epochs: it is validated once as built and kept, and its refit is a rebuild.

use burn::prelude::*;
use ember_data::Dataset;
use ember_models::{Loss, Model, ModelConfig, ModelInit};
use std::path::Path;

use crate::checkpoint::{self, StageDone};
use crate::trainer::{Schedule, StageRun, StepSettings};
use crate::{Backend, TrainConfig, TrainError, params, seeds};

/// What a model is built for on `data`, on `backend`, with `pair_loss` the objective of pair
/// models (`train.loss`).
pub fn model_init(data: &Dataset, pair_loss: Loss, backend: Backend) -> ModelInit<'_> {
    ModelInit {
        users: data.num_users(),
        items: data.num_items(),
        train: &data.train,
        dense: backend.dense_split(),
        pair_loss,
        masks: backend.masks(),
    }
}

/// How a stage's model is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Build {
    /// Initialised afresh.
    Init,
    /// Assembled from the trained models of these stages (indices in the plan), in order.
    Assembled(Vec<usize>),
}

/// How many epochs a stage trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Epochs {
    /// Up to this many, the kept one chosen on validation.
    Select(usize),
    /// As many as validation chose for this stage (its refit).
    ChosenFor(usize),
}

/// One stage: a model trained on its own schedule.
#[derive(Debug, Clone)]
pub(crate) struct Stage {
    /// Label in logs and curves.
    pub(crate) name: String,
    /// The stage's model.
    pub(crate) config: ModelConfig,
    pub(crate) build: Build,
    pub(crate) epochs: Epochs,
    /// Competes on validation as built, as epoch 0 (a pre-trained or fitted model).
    pub(crate) keep_initial: bool,
    /// Trained on training and validation data.
    pub(crate) refit: bool,
    /// Seed of its epochs' generators.
    pub(crate) seed: u64,
    /// Adam's learning rate.
    pub(crate) learning_rate: f64,
}

/// The stages of a run, and how assembled stages are put together.
pub(crate) struct StagePlan {
    stages: Vec<Stage>,
    /// Stages before the refit ones.
    selection: usize,
    /// Builds an assembled stage's model from the models of the stages it names.
    assemble: Option<Box<dyn Fn(Vec<Model>) -> Model>>,
    /// The run's seed.
    seed: u64,
}

impl StagePlan {
    /// The stages of `model`'s run with `train`'s settings and seed `seed`.
    pub(crate) fn new(model: &ModelConfig, train: &TrainConfig, seed: u64) -> Self {
        Self::planned(model, &|c| c.settings().fitted_at_init(), train, seed)
    }

    /// [`StagePlan::new`], with `fitted` telling the models fitted when built.
    fn planned(
        model: &ModelConfig,
        fitted: &dyn Fn(&ModelConfig) -> bool,
        train: &TrainConfig,
        seed: u64,
    ) -> Self {
        let lr = train.learning_rate;
        let pretrain_epochs = train.pretrain_epochs.unwrap_or(train.epochs);
        let mut stages = Vec::new();
        let assemble = model.pretraining().map(|pretraining| {
            for (k, (name, config)) in pretraining.stages.into_iter().enumerate() {
                let seed = seeds::pretraining_stage(seed, k);
                stages.push(Stage::trained(name, config, pretrain_epochs, seed, lr));
            }
            pretraining.assemble
        });
        let mut main = Stage::trained(model.name(), model.clone(), train.epochs, seed, lr);
        if assemble.is_some() {
            main.build = Build::Assembled((0..stages.len()).collect());
            main.keep_initial = true;
            // Fine-tuning a pre-trained model may use its own (smaller) learning rate.
            main.learning_rate = train.finetune_learning_rate.unwrap_or(lr);
        }
        stages.push(main);
        for stage in stages.iter_mut().filter(|s| fitted(&s.config)) {
            stage.epochs = Epochs::Select(0);
            stage.keep_initial = true;
        }
        let selection = stages.len();
        if train.refit {
            let refits: Vec<Stage> = (0..selection)
                .map(|k| stages[k].refit(k, selection))
                .collect();
            stages.extend(refits);
        }
        Self {
            stages,
            selection,
            assemble,
            seed,
        }
    }

    /// The stages, in order.
    pub(crate) fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The stage whose validation chooses the run's epoch: the model's own, before any refit.
    pub(crate) fn selected(&self) -> usize {
        self.selection - 1
    }

    /// The stage whose model the run keeps: the last.
    pub(crate) fn last(&self) -> usize {
        self.stages.len() - 1
    }

    /// Whether stage `index` is the first refit stage.
    pub(crate) fn starts_refit(&self, index: usize) -> bool {
        self.stages[index].refit && index == self.selection
    }

    /// Stage `index` as the trainer runs it, once the stages `done` are finished.
    pub(crate) fn run_of(&self, index: usize, done: &[StageDone]) -> StageRun<'_> {
        let stage = &self.stages[index];
        let schedule = match stage.epochs {
            Epochs::Select(n) => Schedule::Select(n),
            Epochs::ChosenFor(k) => Schedule::Fixed(done[k].best_epoch),
        };
        StageRun {
            index,
            name: &stage.name,
            input: stage.config.input(),
            schedule,
            step: StepSettings {
                seed: stage.seed,
                learning_rate: stage.learning_rate,
                keep_initial: stage.keep_initial,
            },
        }
    }

    /// Stage `index`'s model before training, for `init` on `device`: initialised, or
    /// assembled from the models of earlier stages kept in `run`.
    pub(crate) fn build(
        &self,
        index: usize,
        init: &ModelInit,
        device: &Device,
        run: &Path,
    ) -> Result<Model, TrainError> {
        let stage = &self.stages[index];
        device.seed(seeds::stage_init(self.seed, index));
        let model = match &stage.build {
            Build::Init => stage.config.init(init, device),
            Build::Assembled(from) => {
                let models = from
                    .iter()
                    .map(|&k| {
                        let built = self.stages[k].config.init(init, device);
                        checkpoint::load_stage(run, k, built)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let assemble = self
                    .assemble
                    .as_ref()
                    .expect("assembled after pre-training");
                assemble(models)
            }
        };
        // burn initialises parameters lazily, at their first use, which would make the initial
        // weights depend on the order a forward pass reads them and on how much of the
        // generator it drew before. They are initialised here, in the model's own order.
        device.seed(seeds::materialize(stage.seed));
        Ok(params::materialize(model))
    }
}

impl Stage {
    /// A stage of `config`, initialised afresh and trained up to `epochs` epochs.
    fn trained(name: &str, config: ModelConfig, epochs: usize, seed: u64, lr: f64) -> Self {
        Self {
            name: name.to_string(),
            config,
            build: Build::Init,
            epochs: Epochs::Select(epochs),
            keep_initial: false,
            refit: false,
            seed,
            learning_rate: lr,
        }
    }

    /// The refit of this stage, stage `index` of a plan whose first `selection` stages are
    /// chosen on validation: the same model on training + validation data, for the epochs
    /// validation chose; assembled from the refit stages when it is assembled.
    fn refit(&self, index: usize, selection: usize) -> Self {
        let build = match &self.build {
            Build::Init => Build::Init,
            Build::Assembled(from) => {
                Build::Assembled(from.iter().map(|k| k + selection).collect())
            }
        };
        Self {
            name: format!("refit {}", self.name),
            build,
            epochs: Epochs::ChosenFor(index),
            refit: true,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::weights_fingerprint;
    use ember_metrics::MetricsReport;
    use std::cell::RefCell;
    use std::rc::Rc;

    fn model(toml: &str) -> ModelConfig {
        toml::from_str(toml).unwrap()
    }

    fn train(refit: bool) -> TrainConfig {
        TrainConfig {
            epochs: 9,
            pretrain_epochs: Some(4),
            learning_rate: 0.01,
            finetune_learning_rate: Some(0.001),
            refit,
            ..TrainConfig::default()
        }
    }

    /// Each stage as (name, build, epochs, keep_initial, refit, seed, learning rate).
    type Row = (String, Build, Epochs, bool, bool, u64, f64);

    fn rows(plan: &StagePlan) -> Vec<Row> {
        plan.stages()
            .iter()
            .map(|s| {
                let (name, build) = (s.name.clone(), s.build.clone());
                let flags = (s.keep_initial, s.refit);
                (
                    name,
                    build,
                    s.epochs,
                    flags.0,
                    flags.1,
                    s.seed,
                    s.learning_rate,
                )
            })
            .collect()
    }

    fn row(name: &str, build: Build, epochs: Epochs, flags: (bool, bool), seed: u64) -> Row {
        let lr = if name.ends_with("neumf") { 0.001 } else { 0.01 };
        (name.into(), build, epochs, flags.0, flags.1, seed, lr)
    }

    /// NeuMF with pre-training and a refit: GMF and MLP, NeuMF assembled from them, then the
    /// three again, NeuMF assembled from the refit GMF and MLP. No index arithmetic is left
    /// to the runner: each assembled stage names its sources.
    #[test]
    fn neumf_with_pretraining_and_refit_names_the_stages_it_is_assembled_from() {
        let neumf = model("kind = \"neumf\"\npretrain = true");
        let plan = StagePlan::new(&neumf, &train(true), 42);
        use Epochs::{ChosenFor, Select};
        assert_eq!(
            rows(&plan),
            [
                row("gmf", Build::Init, Select(4), (false, false), 43),
                row("mlp", Build::Init, Select(4), (false, false), 44),
                row(
                    "neumf",
                    Build::Assembled(vec![0, 1]),
                    Select(9),
                    (true, false),
                    42
                ),
                row("refit gmf", Build::Init, ChosenFor(0), (false, true), 43),
                row("refit mlp", Build::Init, ChosenFor(1), (false, true), 44),
                row(
                    "refit neumf",
                    Build::Assembled(vec![3, 4]),
                    ChosenFor(2),
                    (true, true),
                    42
                ),
            ]
        );
        assert_eq!((plan.selected(), plan.last()), (2, 5));
        let starts: Vec<usize> = (0..6).filter(|&k| plan.starts_refit(k)).collect();
        assert_eq!(starts, [3]);
    }

    /// A model without pre-training is one stage at the learning rate (not the fine-tuning
    /// one), trained for `train.epochs`.
    #[test]
    fn a_model_alone_is_one_stage() {
        let plan = StagePlan::new(&model("kind = \"mf\""), &train(false), 7);
        assert_eq!(
            rows(&plan),
            [row("mf", Build::Init, Epochs::Select(9), (false, false), 7)]
        );
        assert_eq!((plan.selected(), plan.last()), (0, 0));
        let run = plan.run_of(0, &[]);
        assert_eq!(run.schedule, Schedule::Select(9));
        assert!(!run.step.keep_initial);
    }

    fn done(best_epoch: usize) -> StageDone {
        StageDone {
            name: "x".into(),
            best_epoch,
            best_valid: MetricsReport {
                protocol: "sampled".into(),
                users: 1,
                skipped_users: 0,
                metrics: vec![],
                negatives: None,
                warnings: vec![],
                groups: Vec::new(),
            },
        }
    }

    /// A model fitted when built trains for no epochs and is kept as built; its refit trains
    /// for the epochs chosen, none, so is a rebuild on the refit's data. (Which models are
    /// fitted is the model's answer; here MF stands in for one.)
    #[test]
    fn a_model_fitted_when_built_is_validated_once_and_its_refit_rebuilt() {
        let mf = model("kind = \"mf\"");
        let plan = StagePlan::planned(&mf, &|c| c.name() == "mf", &train(true), 7);
        assert_eq!(
            rows(&plan),
            [
                row("mf", Build::Init, Epochs::Select(0), (true, false), 7),
                row(
                    "refit mf",
                    Build::Init,
                    Epochs::ChosenFor(0),
                    (true, true),
                    7
                ),
            ]
        );
        let first = plan.run_of(0, &[]);
        assert_eq!(first.schedule, Schedule::Select(0));
        assert!(first.step.keep_initial);
        assert_eq!(plan.run_of(1, &[done(0)]).schedule, Schedule::Fixed(0));
    }

    #[test]
    fn a_refit_trains_for_the_epochs_its_stage_chose() {
        let plan = StagePlan::new(&model("kind = \"mf\""), &train(true), 7);
        assert_eq!(plan.run_of(1, &[done(6)]).schedule, Schedule::Fixed(6));
        assert_eq!(plan.run_of(1, &[done(6)]).name, "refit mf");
    }

    /// An assembled stage is built from the kept models of the stages it names, in their
    /// order; the others are built afresh, from a seed of their own.
    #[test]
    fn an_assembled_stage_is_built_from_the_models_it_names() {
        let device = Device::flex().autodiff();
        let dir = tempfile::tempdir().unwrap();
        let train_items = vec![vec![0u32, 1], vec![2], vec![1]];
        let init = ModelInit::new(3, &train_items);
        let mf = model("kind = \"mf\"\nfactors = 2");
        let seen = Rc::new(RefCell::new(Vec::new()));
        let record = seen.clone();
        let stage = |name: &str, seed, build| Stage {
            build,
            ..Stage::trained(name, mf.clone(), 1, seed, 0.01)
        };
        let plan = StagePlan {
            stages: vec![
                stage("a", 1, Build::Init),
                stage("b", 2, Build::Init),
                stage("ab", 3, Build::Assembled(vec![1, 0])),
            ],
            selection: 3,
            assemble: Some(Box::new(move |models: Vec<Model>| {
                record
                    .borrow_mut()
                    .extend(models.iter().map(weights_fingerprint));
                models.into_iter().next().unwrap()
            })),
            seed: 5,
        };
        let a = plan.build(0, &init, &device, dir.path()).unwrap();
        let b = plan.build(1, &init, &device, dir.path()).unwrap();
        assert_ne!(weights_fingerprint(&a), weights_fingerprint(&b));
        checkpoint::save_stage(dir.path(), 0, &a).unwrap();
        checkpoint::save_stage(dir.path(), 1, &b).unwrap();
        let ab = plan.build(2, &init, &device, dir.path()).unwrap();
        let prints = [weights_fingerprint(&b), weights_fingerprint(&a)];
        assert_eq!(*seen.borrow(), prints);
        assert_eq!(weights_fingerprint(&ab), prints[0]);
        // Built again, a stage is the same model: its seed is fixed by its place.
        let again = plan.build(0, &init, &device, dir.path()).unwrap();
        assert_eq!(weights_fingerprint(&again), weights_fingerprint(&a));
    }
}
