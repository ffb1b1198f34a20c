//! ember's exported model format, and everything needed to serve it: loading with validation,
//! scoring, top-k recommendations and audiences, in pure Rust (no burn, no polars).
//!
//! An exported model is a directory with two files:
//! - `manifest.json` ([`Manifest`]): format version, model kind and sizes ([`ModelSpec`], from
//!   ember-spec, which the training side shares), precision, the external ↔ internal id maps, a
//!   data set fingerprint and the training metrics;
//! - `model.safetensors`: the weights, named after the training-side module paths
//!   (`tower.layers.0.weight`), what a family stores beside them to score the users it was
//!   trained on ([`HISTORY_OFFSETS`], [`RATINGS_OFFSETS`]), and every user's known items
//!   ([`KNOWN_OFFSETS`]: all of their interactions in the run's data, for every model kind;
//!   absent from format-version-1 exports, which still load, with no known items), with the
//!   day of each one's latest interaction when the data had dates ([`KNOWN_DAYS`]). Matrices are row-major; a dense
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
//! Queries never recommend a user what they already have, nor put a user who has an item in
//! its audience, unless their exclusion policy ([`Known`]) says to leave out none or only what
//! was had since a date; scoring scores everything. Every answer
//! can come with its explanation ([`Because`]: the user's own items that weigh most), which
//! each family computes from its structure:
//! - MF, GMF, MLP, NeuMF, LightGCN: the cosine similarity of the recommended item's embedding
//!   with each known item's (NeuMF: the GMF item table; LightGCN: the final embeddings);
//! - SASRec, BERT4Rec: the final position's attention over the window, averaged over heads,
//!   then over blocks;
//! - Mult-DAE, Mult-VAE, CDAE, U-AutoRec, GRU4Rec: occlusion, the drop in the recommended
//!   item's score when one of the user's items is removed from the model's input, for at most
//!   [`MAX_OCCLUDED`] items per user (each removal is one more forward pass);
//! - I-AutoRec: the cosine similarity of item codes `σ(V r_i + μ)`;
//! - ItemKNN: the model's own terms, the similarity of each of the user's items that is a
//!   neighbour of the recommended item ("people who took X took Y").
//!
//! Each family also gives a user's representation ([`ExportedModel::user_vector`]), for
//! segmenting users, and says what its scores are ([`ScoreScale`]).
//!
//! Modules: `format` (the manifest and the stored data's names), `source` (the tensor source),
//! `nn` (layers), `families` (the models, behind one trait), `model` (loading and queries),
//! `topk`, `writer`, and the inner loops `kernels` and `quant`.

#![deny(missing_docs)]

mod families;
mod fold_in;
mod format;
mod kernels;
mod model;
mod nn;
mod quant;
mod source;
mod topk;
mod writer;

pub use ember_spec::{
    ATTRIBUTES_EXTENSION, AttributeColumn, AttributeSchema, ColumnEncoder, ExportedAttributes,
    FeatureRows, SideAttributes,
};
pub use ember_spec::{
    AutoRecSpec, AutoencoderSpec, CdaeSpec, FactorsSpec, Gru4RecSpec, ItemKnnSpec, Key, KeyKind,
    LightGcnSpec, MlpSpec, ModelSpec, NeuMfSpec, SpecError, TransformerSpec,
};
pub use families::MAX_OCCLUDED;
pub use fold_in::{FOLD_IN_ALPHA, FOLD_IN_RIDGE};
pub use format::{
    Checksums, FORMAT_VERSION, HISTORY_ITEMS, HISTORY_OFFSETS, KNOWN_DAYS, KNOWN_EXTENSIONS,
    KNOWN_ITEMS, KNOWN_OFFSETS, Keys, KnownItems, Manifest, ModelData, OLDEST_FORMAT_VERSION,
    Precision, RATINGS_COLUMNS, RATINGS_OFFSETS, RATINGS_VALUES, TensorF32, sha256,
};
pub use model::{Because, ExportedModel, Known, Options, Recommendation, ScoreScale};
pub use quant::{f16_to_f32, f32_to_f16};
pub use topk::Scored;
pub use writer::{TensorBytes, write_model, write_model_known, write_model_with};

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
    #[error(
        "format version {found} is not supported: this build reads version {FORMAT_VERSION}, whose checksums prove an export whole; {}",
        version_advice(*found)
    )]
    Version {
        /// The version in the manifest.
        found: u32,
    },
    /// A file or id list does not match the checksum the manifest recorded for it.
    #[error(
        "{path}: the checksum of {what} does not match the manifest ({recorded} recorded, {found} found): it was changed or damaged after export; export the run again"
    )]
    Checksum {
        /// The file holding the part that differs.
        path: PathBuf,
        /// What was checked (`model.safetensors`, `user_ids`, …).
        what: &'static str,
        /// The checksum in the manifest.
        recorded: String,
        /// The checksum of what is there.
        found: String,
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
        /// The external key, as the query gave it.
        id: Key,
    },
    /// A query named a user or item by a key of the other kind (a string where the model's
    /// keys are integers, or the reverse): no such key can be the model's.
    #[error(
        "{what} `{id}` is not {} key: the model's {what}s have {} keys",
        article(expected.name()),
        expected.name()
    )]
    KeyKind {
        /// `user` or `item`.
        what: &'static str,
        /// The key given.
        id: Key,
        /// The kind of the model's keys.
        expected: KeyKind,
    },
}

/// `a integer` reads badly: the article of a kind's name.
fn article(name: &str) -> String {
    if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {name}")
    } else {
        format!("a {name}")
    }
}

/// What to do with an export of a version this build does not read.
fn version_advice(found: u32) -> &'static str {
    if found < OLDEST_FORMAT_VERSION {
        "export the run again with this ember (`ember export --run RUN --out DIR`)"
    } else {
        "a newer ember wrote it"
    }
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
