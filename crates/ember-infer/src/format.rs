//! The exported format's data: the manifest, the precisions, the names of the data stored
//! beside the weights, and what the training side hands over. Nothing here knows a family's
//! tensors: those are named where they are loaded (`families/`), and the writer (`writer.rs`)
//! checks its output by loading it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Key, KeyKind, ModelSpec};

/// The format version this crate writes and reads.
///
/// - Version 3 adds what lets a reader trust an export: SHA-256 checksums of
///   `model.safetensors`, of each id list and of the extensions ([`Checksums`]), verified on
///   every load; id lists that must be strictly ascending (the order of the training run's id
///   maps), so a reordered list is refused even before its checksum is compared; keys typed as
///   integers or strings ([`Keys`]); the fingerprint of the run the model came from
///   ([`Manifest::run_fingerprint`]); and an extension section ([`Manifest::extensions`]) for
///   what later parts of a model carry (attribute encoders, a calibration). Its known items
///   are every (user, item) pair of the run's source, whatever preprocessing kept for
///   training, optionally with each pair's latest day ([`KNOWN_DAYS`]).
/// - Version 2 added each user's known items ([`KNOWN_OFFSETS`], [`KNOWN_ITEMS`]).
///
/// Versions 1 and 2 carry no checksums, so nothing tells a flipped bit or a reordered id list
/// from the real thing: they are refused with a message to export the run again.
pub const FORMAT_VERSION: u32 = 3;

/// The oldest format version this crate reads (see [`FORMAT_VERSION`]).
pub const OLDEST_FORMAT_VERSION: u32 = 3;

/// The extensions a version-3 manifest may carry, by name. A reader refuses a name it does not
/// know rather than ignore what may change the answers (a calibration does).
pub const KNOWN_EXTENSIONS: &[&str] = &[crate::ATTRIBUTES_EXTENSION];

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
/// timestamps). Queries that leave out only what was had since a date
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

/// External keys of users or items, indexed by internal id, as the data had them: integers
/// (`[1, 2, 3]` in JSON) or strings (`["C-000123", …]`). A list is strictly ascending (integers
/// by value, strings by their UTF-8 bytes): that is the order of the training run's id maps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Keys {
    /// Integer keys.
    Integers(Vec<i64>),
    /// String keys.
    Strings(Vec<String>),
}

impl Keys {
    /// Number of keys.
    pub fn len(&self) -> usize {
        match self {
            Keys::Integers(keys) => keys.len(),
            Keys::Strings(keys) => keys.len(),
        }
    }

    /// `true` when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kind of the keys.
    pub fn kind(&self) -> KeyKind {
        match self {
            Keys::Integers(_) => KeyKind::Integer,
            Keys::Strings(_) => KeyKind::String,
        }
    }

    /// The key at `index` (an internal id), `None` past the end.
    pub fn get(&self, index: usize) -> Option<Key> {
        match self {
            Keys::Integers(keys) => keys.get(index).map(|&key| Key::Integer(key)),
            Keys::Strings(keys) => keys.get(index).map(|key| Key::String(key.clone())),
        }
    }

    /// The keys in order, as [`Key`]s.
    pub fn to_keys(&self) -> Vec<Key> {
        match self {
            Keys::Integers(keys) => keys.iter().map(|&key| Key::Integer(key)).collect(),
            Keys::Strings(keys) => keys.iter().map(|key| Key::String(key.clone())).collect(),
        }
    }

    /// The first position whose key is not above the one before it (a repeat, or out of
    /// order), as `(position, key)`.
    pub(crate) fn first_out_of_order(&self) -> Option<(usize, String)> {
        fn find<T: PartialOrd + ToString>(keys: &[T]) -> Option<(usize, String)> {
            keys.windows(2)
                .position(|w| w[0] >= w[1])
                .map(|k| (k + 1, keys[k + 1].to_string()))
        }
        match self {
            Keys::Integers(keys) => find(keys),
            Keys::Strings(keys) => find(keys),
        }
    }

    /// SHA-256 of the keys in a fixed encoding: for integers, the type tag `i` and each key as
    /// 8 little-endian bytes; for strings, the tag `s` and each key as its byte length (4
    /// little-endian bytes) and UTF-8 bytes.
    pub fn checksum(&self) -> String {
        let mut hasher = Sha256::new();
        match self {
            Keys::Integers(keys) => {
                hasher.update(b"i");
                for key in keys {
                    hasher.update(key.to_le_bytes());
                }
            }
            Keys::Strings(keys) => {
                hasher.update(b"s");
                for key in keys {
                    hasher.update((key.len() as u32).to_le_bytes());
                    hasher.update(key.as_bytes());
                }
            }
        }
        hex_digest(hasher)
    }
}

/// `sha256:<64 hex digits>` of what `hasher` was fed.
fn hex_digest(hasher: Sha256) -> String {
    let digest = hasher.finalize();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// `sha256:<64 hex digits>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(bytes);
    hex_digest(hasher)
}

/// The checksums of an export (format version 3), each `sha256:<hex>`, checked on every load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checksums {
    /// Of `model.safetensors`, byte for byte.
    pub weights: String,
    /// Of [`Manifest::user_ids`] ([`Keys::checksum`]).
    pub user_ids: String,
    /// Of [`Manifest::item_ids`].
    pub item_ids: String,
    /// Of [`Manifest::extensions`] as compact JSON (serde_json writes object keys sorted).
    pub extensions: String,
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
    /// External user keys, indexed by internal id.
    pub user_ids: Keys,
    /// External item keys, indexed by internal id.
    pub item_ids: Keys,
    /// A hash of the training data, to tell which data a model was trained on.
    pub dataset_fingerprint: String,
    /// A hash of the training run the model came from (its resolved config, its inputs'
    /// fingerprints and its weights), so decisions and reports can refuse to mix one model's
    /// artefacts with another run's. Empty for a model not exported from a run (tests).
    pub run_fingerprint: String,
    /// Checksums of the weights, the id lists and the extensions, filled in by the writer.
    pub checksums: Checksums,
    /// Named sections later parts of a model add (attribute encoders, a calibration); see
    /// [`KNOWN_EXTENSIONS`].
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extensions: serde_json::Map<String, serde_json::Value>,
    /// Training-side metrics, as the run reported them.
    #[serde(default)]
    pub metrics: serde_json::Value,
}

impl Manifest {
    /// A version-3 manifest of `model` at `precision` over `user_ids` and `item_ids`, with
    /// empty checksums (the writer fills them) and no extensions or metrics.
    pub fn new(model: ModelSpec, precision: Precision, user_ids: Keys, item_ids: Keys) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            model,
            precision,
            user_ids,
            item_ids,
            dataset_fingerprint: String::new(),
            run_fingerprint: String::new(),
            checksums: Checksums {
                weights: String::new(),
                user_ids: String::new(),
                item_ids: String::new(),
                extensions: String::new(),
            },
            extensions: serde_json::Map::new(),
            metrics: serde_json::Value::Null,
        }
    }

    /// This manifest at the current format version with the checksums of `weights` (the
    /// bytes of `model.safetensors`), of its id lists and of its extensions: what the writer
    /// stores. (Also how a test or a fuzzer makes an edited export that passes the checksums,
    /// to reach the checks behind them.)
    pub fn with_checksums(&self, weights: &[u8]) -> Manifest {
        let mut manifest = self.clone();
        manifest.format_version = FORMAT_VERSION;
        manifest.checksums = Checksums {
            weights: sha256(weights),
            user_ids: manifest.user_ids.checksum(),
            item_ids: manifest.item_ids.checksum(),
            extensions: manifest.extensions_checksum(),
        };
        manifest
    }

    /// The checksum of [`Self::extensions`].
    pub fn extensions_checksum(&self) -> String {
        let json = serde_json::to_vec(&self.extensions).expect("JSON values always serialise");
        sha256(&json)
    }
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
