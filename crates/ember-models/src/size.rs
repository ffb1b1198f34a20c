//! Parameter counts from a config, before anything is allocated: each family's
//! [`ModelSettings::parameter_count`](crate::ModelSettings::parameter_count) adds up its
//! tensors with these, and a test holds every family to the `num_params()` of the module its
//! `init` builds.
//!
//! Counts are `u128` and saturate: a config's sizes are any `usize` a file holds
//! (`factors = 1e9` on a million users is 10^15 parameters), and the count must say so rather
//! than wrap.

/// Parameters of an embedding table of `rows` rows of `dim` values.
pub(crate) fn table(rows: usize, dim: usize) -> u128 {
    (rows as u128).saturating_mul(dim as u128)
}

/// Parameters of a dense layer from `input` to `output` features, with its bias.
pub(crate) fn linear(input: usize, output: usize) -> u128 {
    table(input, output).saturating_add(output as u128)
}

/// Parameters of a layer norm over `size` features (scale and shift).
pub(crate) fn norm(size: usize) -> u128 {
    2 * size as u128
}

/// Parameters of dense layers between consecutive `sizes`.
pub(crate) fn stack(sizes: &[usize]) -> u128 {
    sum(sizes.windows(2).map(|w| linear(w[0], w[1])))
}

/// A saturating sum.
pub(crate) fn sum(counts: impl IntoIterator<Item = u128>) -> u128 {
    counts.into_iter().fold(0, u128::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;
    use burn::prelude::*;

    fn every_kind() -> Vec<ModelConfig> {
        let (hidden, max_len, dropout) = (8, 5, 0.1);
        vec![
            ModelConfig::Mf(MfConfig {
                factors: 3,
                init_std: 0.1,
            }),
            ModelConfig::Gmf(GmfConfig {
                factors: 3,
                init_std: 0.1,
            }),
            ModelConfig::Mlp(MlpConfig {
                layers: vec![8, 6, 3],
                init_std: 0.1,
            }),
            ModelConfig::NeuMf(NeuMfConfig {
                factors: 4,
                layers: vec![8, 6, 3],
                init_std: 0.1,
                pretrain: false,
                alpha: 0.5,
            }),
            ModelConfig::LightGcn(LightGcnConfig {
                factors: 4,
                layers: 2,
                reg: 1e-4,
                init_std: 0.1,
            }),
            ModelConfig::MultDae(MultDaeConfig {
                hidden: vec![7, 3],
                dropout,
            }),
            ModelConfig::MultVae(MultVaeConfig {
                hidden: vec![7, 3],
                dropout,
                beta: 0.2,
                anneal_steps: 10,
            }),
            ModelConfig::Cdae(CdaeConfig { hidden: 5, dropout }),
            ModelConfig::AutoRec(AutoRecConfig {
                hidden: 5,
                item_based: true,
                l2: 1.0,
            }),
            ModelConfig::AutoRec(AutoRecConfig {
                hidden: 5,
                item_based: false,
                l2: 1.0,
            }),
            ModelConfig::SasRec(SasRecConfig {
                hidden,
                blocks: 2,
                heads: 2,
                max_len,
                dropout,
                loss: SequenceLoss::default(),
                negatives: 1,
            }),
            ModelConfig::Bert4Rec(Bert4RecConfig {
                hidden,
                blocks: 2,
                heads: 2,
                max_len,
                dropout,
                mask_prob: 0.2,
            }),
            ModelConfig::Gru4Rec(Gru4RecConfig {
                embedding: 6,
                hidden: 5,
                layers: 2,
                max_len,
                dropout,
                loss: Gru4RecLoss::default(),
                negatives: 2,
                bpreg: 1.0,
            }),
            ModelConfig::ItemKnn(ItemKnnConfig {
                neighbours: 4,
                shrinkage: 1.0,
            }),
        ]
    }

    #[test]
    fn every_family_counts_the_parameters_its_module_holds() {
        let train: Vec<Vec<u32>> = (0..9).map(|u| vec![u % 11, (u + 3) % 11]).collect();
        let init = ModelInit::new(11, &train);
        let device = Device::flex();
        let kinds = every_kind();
        let mut named: Vec<&str> = kinds.iter().map(|c| c.name()).collect();
        named.dedup();
        assert_eq!(named, MODEL_KINDS, "a model kind is missing from the test");
        for config in kinds {
            config.validate().unwrap();
            let built = config.init(&init, &device).num_params() as u128;
            assert_eq!(
                config.parameter_count(9, 11),
                built,
                "{}: {config:?}",
                config.name()
            );
        }
    }

    #[test]
    fn counts_of_absurd_sizes_saturate_instead_of_wrapping() {
        let config = ModelConfig::Mf(MfConfig {
            factors: 1_000_000_000,
            init_std: 0.1,
        });
        assert_eq!(config.parameter_count(200, 100), 300_000_000_000);
        assert_eq!(linear(usize::MAX, usize::MAX), u128::MAX - u64::MAX as u128);
        assert_eq!(sum([u128::MAX, 1]), u128::MAX);
    }
}
