//! ember's exported model format, and everything needed to serve it: loading with validation,
//! scoring, top-k recommendations and audiences, in pure Rust.
//!
//! An exported model is a directory with two files:
//! - `manifest.json` ([`Manifest`]): format version, model kind and shape, precision, the
//!   external ↔ internal id maps, a data set fingerprint and the training metrics;
//! - `model.safetensors`: the weights, named after the training-side module paths (see
//!   [`expected_tensors`]). Matrices are row-major; a dense layer's weight is `[inputs, outputs]`.
//!   At `f16` precision matrices are stored as F16; at `int8` as I8 with a per-row F32 scale in
//!   `<name>.scale` (symmetric: `value = int8 × scale`). Biases always stay F32.
//!
//! Loading checks the header and every shape against the manifest before allocating anything,
//! and rejects malformed or hostile files with an [`InferError`], never a panic.

#![deny(missing_docs)]

mod format;
mod kernels;
mod quant;
mod scorer;
mod sequence;

pub use format::{
    FORMAT_VERSION, HISTORY_ITEMS, HISTORY_OFFSETS, Manifest, ModelData, ModelSpec, Precision,
    RATINGS_COLUMNS, RATINGS_OFFSETS, RATINGS_VALUES, TensorF32, expected_tensors, write_model,
    write_model_with,
};
pub use quant::{f16_to_f32, f32_to_f16};
pub use scorer::{ExportedModel, Scored};

/// Errors of writing, loading and querying an exported model.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// `manifest.json` is not valid JSON of the expected shape.
    #[error("{path}: invalid manifest: {message}")]
    Manifest {
        /// The manifest file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The format version is not one this crate reads.
    #[error("format version {found} is not supported (this build reads version {FORMAT_VERSION})")]
    Version {
        /// The version in the manifest.
        found: u32,
    },
    /// The weights file is not valid safetensors.
    #[error("{path}: invalid safetensors file: {message}")]
    Safetensors {
        /// The weights file.
        path: std::path::PathBuf,
        /// What the parser said.
        message: String,
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
