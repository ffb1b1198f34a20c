//! ember's exported model format, and everything needed to serve it: loading with validation,
//! scoring, top-k recommendations and audiences, in pure Rust (no burn, no polars).
//!
//! An exported model is a directory with two files:
//! - `manifest.json` ([`Manifest`]): format version, model kind and sizes ([`ModelSpec`], from
//!   ember-spec, which the training side shares), precision, the external ↔ internal id maps, a
//!   data set fingerprint and the training metrics;
//! - `model.safetensors`: the weights, named after the training-side module paths
//!   (`tower.layers.0.weight`), and what a family stores beside them to score the users it was
//!   trained on ([`HISTORY_OFFSETS`], [`RATINGS_OFFSETS`]). Matrices are row-major; a dense
//!   layer's weight is `[inputs, outputs]`. At `f16` precision matrices are stored as F16; at
//!   `int8` as I8 with a per-row F32 scale in `<name>.scale` (symmetric: `value = int8 × scale`).
//!   Vectors (biases, layer norms) always stay F32.
//!
//! Each family's loader (`src/families/`, one file per family) takes its tensors by name and
//! shape from a tensor source, as candle's `VarBuilder` does: that call is the only place a
//! tensor's name and shape are written, so the loader is the format's schema. Taking a tensor
//! checks its dtype and shape against the manifest before decoding it, refuses NaN and
//! infinities, and a tensor the loader did not take is an error naming it. The writer
//! ([`write_model_with`]) lists no names either: it converts what it is given and loads the
//! result with the same loader before making it visible. Malformed or hostile files get an
//! [`InferError`], never a panic (`fuzz/` holds the loader's fuzz target).
//!
//! Modules: `format` (the manifest and the stored data's names), `source` (the tensor source),
//! `nn` (layers), `families` (the models, behind one trait), `model` (loading and queries),
//! `topk`, `writer`, and the inner loops `kernels` and `quant`.

#![deny(missing_docs)]

mod families;
mod format;
mod kernels;
mod model;
mod nn;
mod quant;
mod source;
mod topk;
mod writer;

pub use ember_spec::{
    AutoRecSpec, AutoencoderSpec, CdaeSpec, FactorsSpec, Gru4RecSpec, LightGcnSpec, MlpSpec,
    ModelSpec, NeuMfSpec, SpecError, TransformerSpec,
};
pub use format::{
    FORMAT_VERSION, HISTORY_ITEMS, HISTORY_OFFSETS, Manifest, ModelData, Precision,
    RATINGS_COLUMNS, RATINGS_OFFSETS, RATINGS_VALUES, TensorF32,
};
pub use model::ExportedModel;
pub use quant::{f16_to_f32, f32_to_f16};
pub use topk::Scored;
pub use writer::{write_model, write_model_with};

use std::path::{Path, PathBuf};

/// Errors of writing, loading and querying an exported model. Where another library's error
/// is the cause (JSON, safetensors, a spec check), it is the [`std::error::Error::source`],
/// and the message does not repeat it.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// `manifest.json` is not valid JSON of the expected shape, or holds unusable values.
    #[error("{path}: invalid manifest: {message}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        message: String,
        /// The parser's or the spec check's error, where one of them found it.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The format version is not one this crate reads.
    #[error("format version {found} is not supported (this build reads version {FORMAT_VERSION})")]
    Version {
        /// The version in the manifest.
        found: u32,
    },
    /// The weights file is not valid safetensors.
    #[error("{path}: invalid safetensors file")]
    Safetensors {
        /// The weights file.
        path: PathBuf,
        /// What the parser said.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// A tensor the manifest requires is absent, or one it does not know is present.
    #[error("tensor `{name}`: {message}")]
    Tensor {
        /// Tensor name.
        name: String,
        /// What is wrong (missing, unexpected, wrong shape or dtype).
        message: String,
    },
    /// The query needs something this model kind does not offer.
    #[error("{0}")]
    Unsupported(String),
    /// A query named a user or item the model does not know.
    #[error("unknown {what} id {id}")]
    UnknownId {
        /// `user` or `item`.
        what: &'static str,
        /// The external id.
        id: i64,
    },
}

impl InferError {
    /// A [`InferError::Manifest`] without an underlying error.
    pub(crate) fn manifest(path: &Path, message: impl Into<String>) -> Self {
        InferError::Manifest {
            path: path.to_owned(),
            message: message.into(),
            source: None,
        }
    }

    /// The manifest's spec is one no model can be built with.
    pub(crate) fn invalid_spec(path: &Path, error: SpecError) -> Self {
        InferError::Manifest {
            path: path.to_owned(),
            message: "unusable model sizes".into(),
            source: Some(Box::new(error)),
        }
    }
}
