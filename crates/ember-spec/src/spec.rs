//! The exported model spec: which model, and the sizes that fix every tensor's shape.

use serde::{Deserialize, Serialize};

/// An architecture setting that no model can be built with. The messages name the config keys
/// (`model.…`), which are also the spec's field names.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// A size that must be positive is zero.
    #[error("model.{0} must be at least 1")]
    ZeroSize(&'static str),
    /// The MLP layer list is unusable.
    #[error(
        "model.layers must list at least 2 sizes, the first even (it is split between user and item), got {0:?}"
    )]
    BadLayers(Vec<usize>),
    /// An autoencoder's hidden sizes are unusable.
    #[error("model.hidden must list at least one size, none of them 0, got {0:?}")]
    BadHidden(Vec<usize>),
    /// Attention heads that do not divide the hidden size.
    #[error("model.heads ({heads}) must divide model.hidden ({hidden})")]
    BadHeads {
        /// Heads.
        heads: usize,
        /// Hidden size.
        hidden: usize,
    },
    /// A window too short for the model.
    #[error("model.max_len must be at least {0}")]
    ShortWindow(usize),
    /// A layer norm ε that is not a positive number.
    #[error("layer_norm_epsilon must be a positive number, got {0}")]
    BadEpsilon(f64),
    /// A setting that must be a non-negative number is not.
    #[error("model.{key} must be a non-negative number, got {value}")]
    Negative {
        /// The config key.
        key: &'static str,
        /// Its value.
        value: f64,
    },
    /// Sizes whose product does not fit in memory's address space.
    #[error("model sizes overflow")]
    Overflow,
}

/// Every model family, once: its [`ModelSpec`] variant, the spec type of its sizes and its
/// kind, the name configs and manifests give it (`kind = "neumf"`). This list is the one place
/// a kind is written: [`ModelSpec`] is built from it here, and ember-models builds its
/// registry from it, so the two cannot disagree.
///
/// `model_families!(callback)` expands to `callback! { /// doc… Variant(SpecType) = "kind", … }`,
/// one entry per family, in this order (the order of the variants of every enum built from it:
/// keep new families at the end).
#[macro_export]
macro_rules! model_families {
    ($callback:ident) => {
        $callback! {
            /// Matrix factorisation: `p_u · q_i`.
            Mf($crate::FactorsSpec) = "mf",
            /// GMF: `hᵀ(p_u ⊙ q_i) + b`.
            Gmf($crate::FactorsSpec) = "gmf",
            /// MLP over `[p_u ‖ q_i]` with ReLU layers.
            Mlp($crate::MlpSpec) = "mlp",
            /// NeuMF: GMF and MLP parts fused in the output layer.
            NeuMf($crate::NeuMfSpec) = "neumf",
            /// LightGCN: embeddings propagated over the user–item graph; the export holds the
            /// final (layer-combined) embeddings and scores by their dot product.
            LightGcn($crate::LightGcnSpec) = "lightgcn",
            /// Mult-DAE: `I → hidden… → I` with tanh, scoring a user from their item history.
            MultDae($crate::AutoencoderSpec) = "mult_dae",
            /// Mult-VAE: as Mult-DAE, the encoder's last layer giving the code's mean and
            /// log-variance (`2 × code` outputs; scoring uses the mean).
            MultVae($crate::AutoencoderSpec) = "mult_vae",
            /// CDAE: `σ(Wᵀ y_u + V_u + b)` decoded to one logit per item.
            Cdae($crate::CdaeSpec) = "cdae",
            /// AutoRec: rating prediction by reconstructing rows of the rating matrix.
            AutoRec($crate::AutoRecSpec) = "autorec",
            /// SASRec: causal self-attention over the user's latest items.
            SasRec($crate::TransformerSpec) = "sasrec",
            /// BERT4Rec: a bidirectional encoder scoring the mask token appended to the history.
            Bert4Rec($crate::TransformerSpec) = "bert4rec",
            /// GRU4Rec: a GRU over the user's latest items; the last state scores every item.
            Gru4Rec($crate::Gru4RecSpec) = "gru4rec",
            /// ItemKNN: each item's most similar items by the cosine of their users; a user's
            /// score of an item sums its similarities to the user's items.
            ItemKnn($crate::ItemKnnSpec) = "item_knn",
        }
    };
}

/// Builds [`ModelSpec`] and its kinds from the list of [`model_families!`].
macro_rules! model_spec {
    ($($(#[$doc:meta])* $variant:ident($spec:ty) = $kind:literal,)*) => {
        /// The model kind and the sizes that fix every tensor's shape (`manifest.json`'s
        /// `model`, tagged by `kind`). Each family's fields are documented on its spec type.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        pub enum ModelSpec {
            $($(#[$doc])* #[serde(rename = $kind)] $variant($spec),)*
        }

        impl ModelSpec {
            /// Every kind, in the order of [`model_families!`].
            pub const KINDS: &[&str] = &[$($kind),*];

            /// The kind as written in configs and manifests (`mf`, `neumf`, `sasrec`, …).
            pub fn kind(&self) -> &'static str {
                match self {
                    $(ModelSpec::$variant(_) => $kind,)*
                }
            }
        }
    };
}

model_families!(model_spec);

impl ModelSpec {
    /// Checks that a model can be built with these sizes.
    pub fn validate(&self) -> Result<(), SpecError> {
        match self {
            ModelSpec::Mf(s) | ModelSpec::Gmf(s) => s.validate(),
            ModelSpec::Mlp(s) => s.validate(),
            ModelSpec::NeuMf(s) => s.validate(),
            ModelSpec::MultDae(s) => s.validate(),
            ModelSpec::MultVae(s) => {
                s.validate()?;
                // The encoder's last layer gives the code's mean and log-variance.
                let code = *s.hidden.last().expect("validated");
                code.checked_mul(2).map(|_| ()).ok_or(SpecError::Overflow)
            }
            ModelSpec::Cdae(s) => s.validate(),
            ModelSpec::AutoRec(s) => s.validate(),
            ModelSpec::SasRec(s) => s.validate(1),
            // The scored window holds the mask token and at least one item.
            ModelSpec::Bert4Rec(s) => s.validate(2),
            ModelSpec::LightGcn(s) => s.validate(),
            ModelSpec::Gru4Rec(s) => s.validate(),
            ModelSpec::ItemKnn(s) => s.validate(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        AutoencoderSpec, FactorsSpec, Gru4RecSpec, ItemKnnSpec, MlpSpec, NeuMfSpec, TransformerSpec,
    };

    #[test]
    fn the_manifest_form_is_kind_tagged_and_strict() {
        let spec: ModelSpec =
            serde_json::from_str(r#"{"kind": "neumf", "factors": 8, "layers": [16, 8]}"#).unwrap();
        assert_eq!(
            spec,
            ModelSpec::NeuMf(NeuMfSpec {
                factors: 8,
                layers: vec![16, 8]
            })
        );
        assert_eq!(spec.kind(), "neumf");
        let text = serde_json::to_string(&spec).unwrap();
        assert_eq!(text, r#"{"kind":"neumf","factors":8,"layers":[16,8]}"#);
        let err = serde_json::from_str::<ModelSpec>(r#"{"kind": "mf", "factors": 8, "x": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `x`"), "{err}");
    }

    #[test]
    fn invalid_sizes_are_named() {
        let cases = [
            (
                ModelSpec::Mf(FactorsSpec { factors: 0 }),
                "model.factors must be at least 1",
            ),
            (
                ModelSpec::Mlp(MlpSpec { layers: vec![7, 4] }),
                "model.layers must list at least 2 sizes",
            ),
            (
                ModelSpec::SasRec(TransformerSpec {
                    hidden: 50,
                    blocks: 2,
                    heads: 3,
                    max_len: 50,
                    layer_norm_epsilon: 1e-8,
                }),
                "model.heads (3) must divide model.hidden (50)",
            ),
            (
                ModelSpec::Bert4Rec(TransformerSpec {
                    hidden: 8,
                    blocks: 1,
                    heads: 2,
                    max_len: 1,
                    layer_norm_epsilon: 1e-12,
                }),
                "model.max_len must be at least 2",
            ),
            (
                ModelSpec::MultVae(AutoencoderSpec { hidden: vec![] }),
                "model.hidden must list at least one size",
            ),
            (
                ModelSpec::Gru4Rec(Gru4RecSpec {
                    embedding: 8,
                    hidden: 8,
                    layers: 0,
                    max_len: 5,
                }),
                "model.layers must be at least 1",
            ),
            (
                ModelSpec::ItemKnn(ItemKnnSpec {
                    neighbours: 0,
                    shrinkage: 0.0,
                }),
                "model.neighbours must be at least 1",
            ),
            (
                ModelSpec::ItemKnn(ItemKnnSpec {
                    neighbours: 5,
                    shrinkage: -1.0,
                }),
                "model.shrinkage must be a non-negative number, got -1",
            ),
        ];
        for (spec, expected) in cases {
            let err = spec.validate().unwrap_err().to_string();
            assert!(err.contains(expected), "{spec:?}: {err}");
        }
    }
}
