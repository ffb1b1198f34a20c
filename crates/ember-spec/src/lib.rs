//! The contracts that ember's training side (ember-data, ember-models, ember-train) and its
//! inference side (ember-infer) must agree on, in one place that both depend on:
//!
//! - [`ModelSpec`]: an exported model's kind and the sizes that fix its tensors, with its
//!   validation (`manifest.json`'s `model`). Training configs build their spec; ember-infer loads
//!   the weights the spec describes.
//! - [`tokens`]: how a sequence model reads a user (padding, item tokens, the mask token).
//! - [`lines`]: how every text input is read, a line at a time within a length limit.
//! - [`keys`]: user and item keys as the data has them (integers or strings).
//! - [`attributes`]: customer and product attributes' encoders, and what an export carries of them.
//!
//! It sits at the bottom of the workspace: it depends on serde alone, and every ember crate that
//! needs a contract depends on it.

#![deny(missing_docs)]

pub mod attributes;
pub mod keys;
pub mod lines;
mod spec;
mod specs;
pub mod tokens;

pub use attributes::{
    ATTRIBUTES_EXTENSION, AttributeColumn, AttributeSchema, ColumnEncoder, ExportedAttributes,
    FeatureRows, SideAttributes,
};
pub use keys::{Key, KeyKind, KeyType};
pub use spec::{ModelSpec, SpecError};
pub use specs::{
    AutoRecSpec, AutoencoderSpec, CdaeSpec, FactorsSpec, Gru4RecSpec, ItemKnnSpec, LightGcnSpec,
    MlpSpec, NeuMfSpec, TransformerSpec,
};
