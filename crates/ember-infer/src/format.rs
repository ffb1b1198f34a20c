//! The exported format's data: the manifest, the precisions, the names of the data stored
//! beside the weights, and what the training side hands over. Nothing here knows a family's
//! tensors: those are named where they are loaded (`families/`), and the writer (`writer.rs`)
//! checks its output by loading it.

use serde::{Deserialize, Serialize};

use crate::ModelSpec;

/// The format version this crate writes. Version 2 added each user's known items
/// ([`KNOWN_OFFSETS`], [`KNOWN_ITEMS`]), which every version-2 export carries.
pub const FORMAT_VERSION: u32 = 2;

/// The oldest format version this crate reads. A version-1 export loads and serves as before,
/// but has no known items: its queries leave out only what they are asked to, and its id-based
/// models (MF, GMF, MLP, NeuMF, LightGCN, I-AutoRec) cannot explain recommendations. Export the
/// run again to get them.
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// Numeric precision of the stored matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// 32-bit floats.
    F32,
    /// IEEE half floats.
    F16,
    /// Symmetric int8 with one f32 scale per row.
    Int8,
}

/// For history-based models: `[users + 1]` I64 offsets into [`HISTORY_ITEMS`]; user `u`'s
/// items are `items[offsets[u]..offsets[u + 1]]`: the training items, sorted and distinct, for
/// the autoencoders; the training then validation items, in time order, for the sequence
/// models.
pub const HISTORY_OFFSETS: &str = "history.offsets";
/// For history-based models: every user's items (internal ids), as I32.
pub const HISTORY_ITEMS: &str = "history.items";

/// For every model (format version 2 on): `[users + 1]` I64 byte offsets into
/// [`KNOWN_ITEMS`]; user `u`'s known items are encoded in `items[offsets[u]..offsets[u + 1]]`:
/// every item the user interacted with in the run's data (training, validation and test),
/// sorted and distinct. Queries leave them out unless asked not to, and explanations name only
/// them.
pub const KNOWN_OFFSETS: &str = "known.offsets";
/// For every model (format version 2 on): every user's known items as U8 bytes, compactly: per
/// user, the first item and then each gap to the next item minus one, each as an unsigned
/// LEB128 varint (7 bits a byte, low bits first, the high bit set on all but a number's last
/// byte). On MovieLens-100K that is about a byte per item, a quarter of I32 ids.
pub const KNOWN_ITEMS: &str = "known.items";
/// Optional, beside [`KNOWN_ITEMS`]: the day of the latest interaction of each known (user,
/// item) pair, as I32 days since 1970-01-01 UTC, one per decoded known item in the same order
/// (user by user, items ascending): `[total known items]`. Present when the run's data had
/// timestamps that are points in time; absent otherwise (positions in a sequence file, no
/// timestamps, an older export). Queries that leave out only what was had since a date
/// ([`crate::Known::Since`]) need it.
pub const KNOWN_DAYS: &str = "known.days";

/// For rating models (AutoRec): `[rows + 1]` I64 offsets into [`RATINGS_COLUMNS`] and
/// [`RATINGS_VALUES`], rows being items for I-AutoRec and users for U-AutoRec.
pub const RATINGS_OFFSETS: &str = "ratings.offsets";
/// For rating models: each training rating's column (user for I-AutoRec), as I32.
pub const RATINGS_COLUMNS: &str = "ratings.columns";
/// For rating models: each training rating, as F32.
pub const RATINGS_VALUES: &str = "ratings.values";

/// What an export stores beside the weights, by model kind.
#[derive(Debug, Clone, Copy)]
pub enum ModelData<'a> {
    /// Nothing (the id-based models).
    None,
    /// Each user's items (internal ids): the history-based models. The autoencoders store the
    /// training items (the writer sorts them and drops repeats); the sequence models the
    /// training then validation items, in time order.
    Histories(&'a [Vec<u32>]),
    /// The training rating matrix as rows of `(column, rating)` (AutoRec).
    Ratings(&'a [Vec<(u32, f32)>]),
}

/// Each user's known items as the training side hands them to the writer.
#[derive(Debug, Clone, Copy)]
pub struct KnownItems<'a> {
    /// Per user of the manifest, their known items (internal ids, in any order: the writer
    /// sorts them and drops repeats).
    pub items: &'a [Vec<u32>],
    /// Per user, the day (days since 1970-01-01, UTC) of each of `items`, entry for entry;
    /// `None` when the data has no times. Stored as [`KNOWN_DAYS`]; of an item given twice,
    /// the later day is kept.
    pub days: Option<&'a [Vec<i32>]>,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Model kind and shape.
    pub model: ModelSpec,
    /// Precision of the stored matrices.
    pub precision: Precision,
    /// External user ids, indexed by internal id.
    pub user_ids: Vec<i64>,
    /// External item ids, indexed by internal id.
    pub item_ids: Vec<i64>,
    /// A hash of the training data, to tell which data a model was trained on.
    pub dataset_fingerprint: String,
    /// Training-side metrics, as the run reported them.
    #[serde(default)]
    pub metrics: serde_json::Value,
}

/// A tensor in f32, as the training side hands it over.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorF32 {
    /// Name: the training-side module path (`tower.layers.0.weight`), which the family's loader
    /// in ember-infer takes by the same name.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}
