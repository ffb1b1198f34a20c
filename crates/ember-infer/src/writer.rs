//! Writing an exported model. The writer knows no family's tensors: it converts what it is
//! given (matrices to the manifest's precision, vectors as F32, an int8 matrix with its
//! `<name>.scale`), stores the users' data as the family's registration says and every user's
//! known items (for every family), writes both files
//! under a temporary name, loads them with the loader that will serve them, and only then
//! renames the directory into place. A tensor missing, misnamed, misshapen or left over fails
//! the export with the loader's own error, and nothing half-written is left behind.

use safetensors::{Dtype, View};
use std::borrow::Cow;
use std::collections::HashSet;
use std::fs;
use std::path::Path;

use crate::format::{
    HISTORY_ITEMS, HISTORY_OFFSETS, KNOWN_DAYS, KNOWN_ITEMS, KNOWN_OFFSETS, KnownItems, Manifest,
    ModelData, Precision, RATINGS_COLUMNS, RATINGS_OFFSETS, RATINGS_VALUES, TensorF32,
};
use crate::model::ExportedModel;
use crate::quant::{f32_to_f16, quantize_rows};
use crate::source::Stored;
use crate::{InferError, families};

/// One tensor as safetensors stores it (dtype, shape, little-endian bytes): the [`View`] every
/// ember writer hands to `safetensors::serialize`, this export's and ember-train's checkpoints'.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorBytes {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl TensorBytes {
    /// A vector of F32 values, shape `[values.len()]`.
    pub fn f32_vector(values: &[f32]) -> Self {
        vector(Dtype::F32, values, |v| v.to_le_bytes())
    }
}

impl View for &TensorBytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn le_bytes<T, const N: usize>(values: &[T], to: impl Fn(&T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(to).collect()
}

fn vector<T, const N: usize>(
    dtype: Dtype,
    values: &[T],
    to: impl Fn(&T) -> [u8; N],
) -> TensorBytes {
    TensorBytes {
        dtype,
        shape: vec![values.len()],
        bytes: le_bytes(values, to),
    }
}

fn tensor_error(name: &str, message: impl Into<String>) -> InferError {
    InferError::Tensor {
        name: name.to_string(),
        message: message.into(),
    }
}

/// Rows of column indices as `[rows + 1]` I64 offsets and I32 columns.
fn sparse_rows<'a>(rows: impl Iterator<Item = &'a [u32]>) -> (TensorBytes, TensorBytes) {
    let mut offsets = vec![0i64];
    let mut columns: Vec<i32> = Vec::new();
    for row in rows {
        columns.extend(row.iter().map(|&c| c as i32));
        offsets.push(columns.len() as i64);
    }
    (
        vector(Dtype::I64, &offsets, |v| v.to_le_bytes()),
        vector(Dtype::I32, &columns, |v| v.to_le_bytes()),
    )
}

/// Each user's known items (sets) as [`KNOWN_ITEMS`] encodes them: per user, the first item and
/// each following gap minus one as LEB128 varints; the offsets are byte offsets.
fn known_bytes(rows: &[Vec<u32>]) -> (TensorBytes, TensorBytes) {
    let mut offsets = vec![0i64];
    let mut bytes: Vec<u8> = Vec::new();
    for row in rows {
        let mut previous: Option<u32> = None;
        for &item in row {
            let mut value = match previous {
                None => item,
                Some(p) => item - p - 1, // sorted and distinct: never negative
            };
            loop {
                let low = (value & 0x7f) as u8;
                value >>= 7;
                if value == 0 {
                    bytes.push(low);
                    break;
                }
                bytes.push(low | 0x80);
            }
            previous = Some(item);
        }
        offsets.push(bytes.len() as i64);
    }
    (
        vector(Dtype::I64, &offsets, |v| v.to_le_bytes()),
        vector(Dtype::U8, &bytes, |v| [*v]),
    )
}

/// Each user's known items as a set (sorted, distinct) with, when given, each one's day (the
/// latest of an item given twice), all users' days in one list.
fn dated_sets(known: KnownItems<'_>) -> Result<(Vec<Vec<u32>>, Option<Vec<i32>>), InferError> {
    let Some(days) = known.days else {
        return Ok((item_sets(known.items), None));
    };
    if days.len() != known.items.len()
        || days
            .iter()
            .zip(known.items)
            .any(|(d, i)| d.len() != i.len())
    {
        return Err(tensor_error(
            KNOWN_DAYS,
            "days given are not one per known item of each user",
        ));
    }
    let mut all_days = Vec::new();
    let sets = known
        .items
        .iter()
        .zip(days)
        .map(|(items, days)| {
            let mut row: Vec<(u32, i32)> =
                items.iter().copied().zip(days.iter().copied()).collect();
            row.sort_unstable_by_key(|&(i, day)| (i, std::cmp::Reverse(day)));
            row.dedup_by_key(|p| p.0);
            all_days.extend(row.iter().map(|p| p.1));
            row.into_iter().map(|p| p.0).collect()
        })
        .collect();
    Ok((sets, Some(all_days)))
}

/// Each user's items as a set: sorted, distinct.
fn item_sets(rows: &[Vec<u32>]) -> Vec<Vec<u32>> {
    rows.iter()
        .map(|row| {
            let mut row = row.clone();
            row.sort_unstable();
            row.dedup();
            row
        })
        .collect()
}

/// The safetensors file (`path` names it in errors) of `tensors` at `precision`, with the
/// users' `data` stored as `stored` says and each of the `users` users' `known` items.
pub(crate) fn encode(
    path: &Path,
    precision: Precision,
    stored: Stored,
    tensors: &[TensorF32],
    data: ModelData<'_>,
    (users, known): (usize, KnownItems<'_>),
) -> Result<Vec<u8>, InferError> {
    if known.items.len() != users {
        return Err(tensor_error(
            KNOWN_OFFSETS,
            format!(
                "known items given for {} users, the manifest has {users}",
                known.items.len()
            ),
        ));
    }
    let mut out: Vec<(String, TensorBytes)> = Vec::new();
    let (sets, days) = dated_sets(known)?;
    let (offsets, items) = known_bytes(&sets);
    out.push((KNOWN_OFFSETS.into(), offsets));
    out.push((KNOWN_ITEMS.into(), items));
    if let Some(days) = days {
        out.push((
            KNOWN_DAYS.into(),
            vector(Dtype::I32, &days, |v| v.to_le_bytes()),
        ));
    }
    for t in tensors {
        let values = t.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if values != Some(t.data.len()) {
            return Err(tensor_error(
                &t.name,
                format!("shape {:?} with {} values", t.shape, t.data.len()),
            ));
        }
        let stored_as = |dtype, bytes| TensorBytes {
            dtype,
            shape: t.shape.clone(),
            bytes,
        };
        match (precision, t.shape.as_slice()) {
            (Precision::F16, [_, _]) => out.push((
                t.name.clone(),
                stored_as(
                    Dtype::F16,
                    le_bytes(&t.data, |v| f32_to_f16(*v).to_le_bytes()),
                ),
            )),
            (Precision::Int8, &[_, cols]) => {
                let (q, scales) = quantize_rows(&t.data, cols);
                let bytes = q.iter().map(|v| *v as u8).collect();
                out.push((t.name.clone(), stored_as(Dtype::I8, bytes)));
                out.push((
                    format!("{}.scale", t.name),
                    TensorBytes::f32_vector(&scales),
                ));
            }
            _ => out.push((
                t.name.clone(),
                stored_as(Dtype::F32, le_bytes(&t.data, |v| v.to_le_bytes())),
            )),
        }
    }
    match (stored, data) {
        (Stored::ItemSets | Stored::Sequences, ModelData::Histories(histories)) => {
            let rows: Vec<Vec<u32>> = if stored == Stored::ItemSets {
                item_sets(histories)
            } else {
                histories.to_vec()
            };
            let (offsets, items) = sparse_rows(rows.iter().map(Vec::as_slice));
            out.push((HISTORY_OFFSETS.into(), offsets));
            out.push((HISTORY_ITEMS.into(), items));
        }
        (Stored::Ratings, ModelData::Ratings(rows)) => {
            let (mut columns, mut values) = (Vec::new(), Vec::new());
            for row in rows {
                let mut row = row.clone();
                row.sort_by_key(|&(c, _)| c);
                row.dedup_by_key(|&mut (c, _)| c);
                columns.push(row.iter().map(|&(c, _)| c).collect::<Vec<u32>>());
                values.extend(row.iter().map(|&(_, v)| v));
            }
            let (offsets, columns) = sparse_rows(columns.iter().map(Vec::as_slice));
            out.push((RATINGS_OFFSETS.into(), offsets));
            out.push((RATINGS_COLUMNS.into(), columns));
            out.push((RATINGS_VALUES.into(), TensorBytes::f32_vector(&values)));
        }
        (Stored::Nothing, ModelData::None) => {}
        (Stored::ItemSets | Stored::Sequences, _) => {
            return Err(tensor_error(
                HISTORY_ITEMS,
                "this model kind needs the users' histories",
            ));
        }
        (_, ModelData::Histories(_)) => {
            return Err(tensor_error(
                HISTORY_ITEMS,
                "this model kind takes no histories",
            ));
        }
        (Stored::Ratings, _) | (_, ModelData::Ratings(_)) => {
            return Err(tensor_error(
                RATINGS_VALUES,
                "AutoRec, and only AutoRec, is exported with its training ratings",
            ));
        }
    }
    let mut names = HashSet::new();
    if let Some((name, _)) = out.iter().find(|(name, _)| !names.insert(name.as_str())) {
        return Err(tensor_error(name, "given twice"));
    }
    safetensors::serialize(out.iter().map(|(n, b)| (n.as_str(), b)), None).map_err(|source| {
        InferError::Safetensors {
            path: path.to_owned(),
            source,
        }
    })
}

/// Writes `manifest.json` and `model.safetensors` into a new directory `dir`, converting the
/// matrices to the manifest's precision, for a model that stores nothing else of its users
/// (MF, GMF, MLP, NeuMF, LightGCN). `known` holds each user's known items (internal ids, one
/// list per user of the manifest, in any order: the writer sorts them and drops repeats),
/// which queries leave out by default and explanations name. Everything is written under a
/// temporary name, loaded back with the loader that will serve it, and renamed at the end, so
/// an interrupted or invalid export leaves no readable half-model.
pub fn write_model(
    dir: &Path,
    manifest: &Manifest,
    tensors: &[TensorF32],
    known: &[Vec<u32>],
) -> Result<Manifest, InferError> {
    write_model_with(dir, manifest, tensors, ModelData::None, known)
}

/// [`write_model`] for any model kind: history-based models (the autoencoders and the
/// sequence models) need each user's items (internal ids), and AutoRec its training ratings,
/// stored beside the weights so that the users of the training data can be scored. `known` is
/// each user's known items, as for [`write_model`]: for every kind, all of the user's
/// interactions in the run's data (training, validation and test), which is more than a
/// history-based model reads. The tensors are written as given; the check that they are
/// exactly the model's (names, shapes, finite values) is loading the written files.
///
/// The manifest's checksums ([`crate::Checksums`]) are the writer's to fill: what was written
/// is returned with them.
pub fn write_model_with(
    dir: &Path,
    manifest: &Manifest,
    tensors: &[TensorF32],
    data: ModelData<'_>,
    known: &[Vec<u32>],
) -> Result<Manifest, InferError> {
    let known = KnownItems {
        items: known,
        days: None,
    };
    write_model_known(dir, manifest, tensors, data, known)
}

/// [`write_model_with`] with the day of each known item's latest interaction, when the data
/// has them ([`KnownItems::days`], stored as [`KNOWN_DAYS`]), for queries that leave out only
/// what was had since a date.
pub fn write_model_known(
    dir: &Path,
    manifest: &Manifest,
    tensors: &[TensorF32],
    data: ModelData<'_>,
    known: KnownItems<'_>,
) -> Result<Manifest, InferError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |error| InferError::Io { path, error }
    };
    if dir.exists() {
        return Err(InferError::Io {
            path: dir.to_owned(),
            error: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "already exists; choose a new directory",
            ),
        });
    }
    let (manifest_path, weights_path) = (dir.join("manifest.json"), dir.join("model.safetensors"));
    // Before converting anything: a spec no model can be built with has no registration.
    manifest
        .model
        .validate()
        .map_err(|e| InferError::invalid_spec(&manifest_path, e))?;
    let stored = families::registration(&manifest.model).stored;
    let users = (manifest.user_ids.len(), known);
    let weights = encode(
        &weights_path,
        manifest.precision,
        stored,
        tensors,
        data,
        users,
    )?;
    let manifest = manifest.with_checksums(&weights);
    let json = serde_json::to_string_pretty(&manifest).expect("a manifest always serialises");
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io(parent))?;
    let partial = parent.join(format!(
        ".{}.partial-{}",
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| {
        fs::create_dir_all(&partial).map_err(io(&partial))?;
        let (partial_manifest, partial_weights) = (
            partial.join("manifest.json"),
            partial.join("model.safetensors"),
        );
        fs::write(&partial_weights, &weights).map_err(io(&partial_weights))?;
        drop(weights);
        fs::write(&partial_manifest, &json).map_err(io(&partial_manifest))?;
        // The files as written, through the loader that will serve them; errors name the
        // files by their final paths.
        let manifest_bytes = fs::read(&partial_manifest).map_err(io(&partial_manifest))?;
        let weights_bytes = fs::read(&partial_weights).map_err(io(&partial_weights))?;
        ExportedModel::from_bytes(
            &manifest_bytes,
            &weights_bytes,
            &manifest_path,
            &weights_path,
        )?;
        fs::rename(&partial, dir).map_err(io(dir))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&partial);
    }
    result.map(|()| manifest)
}

/// A model loaded from `tensors` as [`write_model_with`] would store them, without files, with
/// no known items: for the families' tests.
#[cfg(test)]
pub(crate) fn load_in_memory(
    manifest: &Manifest,
    tensors: &[TensorF32],
    data: ModelData<'_>,
) -> Result<ExportedModel, InferError> {
    let known = vec![Vec::new(); manifest.user_ids.len()];
    load_in_memory_known(manifest, tensors, data, &known)
}

/// [`load_in_memory`] with each user's `known` items.
#[cfg(test)]
pub(crate) fn load_in_memory_known(
    manifest: &Manifest,
    tensors: &[TensorF32],
    data: ModelData<'_>,
    known: &[Vec<u32>],
) -> Result<ExportedModel, InferError> {
    let stored = families::registration(&manifest.model).stored;
    let path = Path::new("model.safetensors");
    let known = KnownItems {
        items: known,
        days: None,
    };
    let users = (manifest.user_ids.len(), known);
    let weights = encode(path, manifest.precision, stored, tensors, data, users)?;
    let json = serde_json::to_vec(&manifest.with_checksums(&weights))
        .expect("a manifest always serialises");
    ExportedModel::from_bytes(&json, &weights, Path::new("manifest.json"), path)
}

/// A manifest of `spec` at `precision` over users `10, 11, …` and items `100, 101, …`: for the
/// families' tests.
#[cfg(test)]
pub(crate) fn test_manifest(
    spec: crate::ModelSpec,
    precision: Precision,
    users: usize,
    items: usize,
) -> Manifest {
    let mut manifest = Manifest::new(
        spec,
        precision,
        crate::Keys::Integers((0..users as i64).map(|u| 10 + u).collect()),
        crate::Keys::Integers((0..items as i64).map(|i| 100 + i).collect()),
    );
    manifest.dataset_fingerprint = "test".into();
    manifest
}

/// A tensor for the families' tests.
#[cfg(test)]
pub(crate) fn tensor(name: &str, shape: &[usize], data: &[f32]) -> TensorF32 {
    TensorF32 {
        name: name.into(),
        shape: shape.to_vec(),
        data: data.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::TensorBytes;
    use safetensors::{Dtype, SafeTensors};

    /// The view ember-train's checkpoints store Adam's moments with: `1.0` is `0x3f800000` and
    /// `-2.5` is `0xc0200000`, written little-endian.
    #[test]
    fn an_f32_vector_is_stored_as_its_little_endian_bytes() {
        let moments = TensorBytes::f32_vector(&[1.0, -2.5]);
        let file = safetensors::serialize([("m/w", &moments)], None).unwrap();
        let file = SafeTensors::deserialize(&file).unwrap();
        let stored = file.tensor("m/w").unwrap();
        assert_eq!(stored.dtype(), Dtype::F32);
        assert_eq!(stored.shape(), &[2]);
        assert_eq!(stored.data(), &[0, 0, 0x80, 0x3f, 0, 0, 0x20, 0xc0]);
    }
}
