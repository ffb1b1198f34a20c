//! Each family's spec: the fields `manifest.json` holds for it, and their checks. One file per
//! model family, as in ember-models and ember-infer.

mod autoencoders;
mod autorec;
mod gru4rec;
mod item_knn;
mod lightgcn;
mod ncf;
mod transformers;

pub use autoencoders::{AutoencoderSpec, CdaeSpec};
pub use autorec::AutoRecSpec;
pub use gru4rec::Gru4RecSpec;
pub use item_knn::ItemKnnSpec;
pub use lightgcn::LightGcnSpec;
pub use ncf::{FactorsSpec, MlpSpec, NeuMfSpec};
pub use transformers::TransformerSpec;

use crate::SpecError;

/// `Err(ZeroSize(key))` when `value` is 0.
pub(crate) fn positive(key: &'static str, value: usize) -> Result<(), SpecError> {
    if value == 0 {
        return Err(SpecError::ZeroSize(key));
    }
    Ok(())
}
