//! The tensor source: a family's loader takes each tensor by name and shape, and that call is
//! the format's only statement of the tensor (the loader is the schema, as with candle's
//! `VarBuilder`). Taking a tensor checks its dtype and shape against what the loader asks for
//! before decoding anything, decodes F32, F16 and int8 (with its `<name>.scale`) to f32, and
//! refuses NaN and infinities; [`Tensors::finish`] then refuses any tensor the loader did not
//! take. The writer loads what it wrote through the same loaders, so writer, reader and checker
//! cannot drift apart.

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt::Display;
use std::path::Path;

use crate::format::{
    HISTORY_ITEMS, HISTORY_OFFSETS, KNOWN_DAYS, KNOWN_ITEMS, KNOWN_OFFSETS, RATINGS_COLUMNS,
    RATINGS_OFFSETS, RATINGS_VALUES,
};
use crate::quant::f16_to_f32;
use crate::{InferError, Precision};

/// What an export stores beside its weights so that the users it was trained on can be scored.
/// Each family's registration (`families::registration`) names its own; the writer reads it to
/// store a history as a set or as a sequence, the loader to read it back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// Nothing: the weights hold a row per user (NCF, LightGCN).
    Nothing,
    /// Each user's training items as a set: sorted, distinct (the autoencoders).
    ItemSets,
    /// Each user's items in time order, repeats kept (the sequence models).
    Sequences,
    /// The training rating matrix (AutoRec).
    Ratings,
}

/// A sparse matrix stored as rows: row `r`'s columns are `columns[offsets[r]..offsets[r + 1]]`.
#[derive(Debug, Clone)]
pub(crate) struct SparseRows {
    pub(crate) offsets: Vec<usize>,
    pub(crate) columns: Vec<u32>,
}

impl SparseRows {
    /// Row `r`'s columns.
    pub(crate) fn row(&self, r: usize) -> &[u32] {
        &self.columns[self.offsets[r]..self.offsets[r + 1]]
    }
}

/// The rows of a stored matrix: decoded to f32, or, at int8, as stored.
#[derive(Debug)]
pub(crate) enum RowData {
    /// Row-major f32 values.
    F32(Vec<f32>),
    /// Row-major int8 values and one scale per row (`value = q × scale`).
    Int8 { q: Vec<i8>, scale: Vec<f32> },
}

/// A parsed `model.safetensors` with what the manifest says about it, and the names taken so
/// far.
pub(crate) struct Tensors<'a> {
    file: SafeTensors<'a>,
    precision: Precision,
    stored: Stored,
    users: usize,
    items: usize,
    manifest_path: &'a Path,
    taken: RefCell<HashSet<String>>,
}

/// Where a loader takes its tensors from: [`Tensors`] under a name prefix ([`Self::pp`]).
#[derive(Clone)]
pub(crate) struct TensorSource<'s> {
    tensors: &'s Tensors<'s>,
    prefix: String,
}

fn tensor_error(name: &str, message: impl Into<String>) -> InferError {
    InferError::Tensor {
        name: name.to_string(),
        message: message.into(),
    }
}

fn f32s(raw: &[u8]) -> impl Iterator<Item = f32> + '_ {
    raw.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl<'a> Tensors<'a> {
    /// Parses the weights file (`weights_path` and `manifest_path` only name the files in
    /// errors) of a model over `users` × `items` whose matrices are stored at `precision`.
    pub(crate) fn parse(
        bytes: &'a [u8],
        weights_path: &Path,
        manifest_path: &'a Path,
        precision: Precision,
        stored: Stored,
        (users, items): (usize, usize),
    ) -> Result<Self, InferError> {
        let file = SafeTensors::deserialize(bytes).map_err(|source| InferError::Safetensors {
            path: weights_path.to_owned(),
            source,
        })?;
        Ok(Self {
            file,
            precision,
            stored,
            users,
            items,
            manifest_path,
            taken: RefCell::new(HashSet::new()),
        })
    }

    /// The source of the whole file, without a prefix.
    pub(crate) fn root(&self) -> TensorSource<'_> {
        TensorSource {
            tensors: self,
            prefix: String::new(),
        }
    }

    /// Checks that the loader took every tensor of the file: a tensor it did not ask for is an
    /// error naming it (the first in name order).
    pub(crate) fn finish(self) -> Result<(), InferError> {
        let taken = self.taken.into_inner();
        let mut names = self.file.names();
        names.sort_unstable();
        match names.into_iter().find(|n| !taken.contains(*n)) {
            Some(name) => Err(tensor_error(name, "not part of this model kind")),
            None => Ok(()),
        }
    }

    /// Each user's known items ([`KNOWN_OFFSETS`], [`KNOWN_ITEMS`]): a set per user, sorted and
    /// distinct, of items of the model. Every model kind stores them (format version 2 on).
    pub(crate) fn known_items(&self) -> Result<SparseRows, InferError> {
        let offsets = self.vector_view(KNOWN_OFFSETS, Dtype::I64)?;
        let bytes = self.vector_view(KNOWN_ITEMS, Dtype::U8)?;
        let (users, width) = (self.users, self.items);
        if offsets.shape()[0] != users + 1 {
            return Err(tensor_error(
                KNOWN_OFFSETS,
                format!("{} offsets, expected {}", offsets.shape()[0], users + 1),
            ));
        }
        let bytes = bytes.data();
        let offsets: Vec<i64> = offsets
            .data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
        if offsets[0] != 0
            || offsets.windows(2).any(|w| w[1] < w[0])
            || offsets[users] != bytes.len() as i64
        {
            return Err(tensor_error(
                KNOWN_OFFSETS,
                "must start at 0, never decrease, and end at the byte count",
            ));
        }
        let malformed = |user: usize, what: &str| {
            tensor_error(KNOWN_ITEMS, format!("user {user}'s items: {what}"))
        };
        let mut rows = SparseRows {
            offsets: vec![0],
            columns: Vec::with_capacity(bytes.len()),
        };
        for user in 0..users {
            let mut row = &bytes[offsets[user] as usize..offsets[user + 1] as usize];
            let mut previous: Option<u64> = None;
            while !row.is_empty() {
                // One varint: at most 5 bytes for a 32-bit value.
                let mut value = 0u64;
                let mut shift = 0;
                loop {
                    let Some((&byte, rest)) = row.split_first() else {
                        return Err(malformed(user, "a varint is cut off"));
                    };
                    row = rest;
                    value |= u64::from(byte & 0x7f) << shift;
                    if byte & 0x80 == 0 {
                        break;
                    }
                    shift += 7;
                    if shift > 28 {
                        return Err(malformed(user, "a varint longer than 5 bytes"));
                    }
                }
                let item = match previous {
                    None => value,
                    Some(p) => p + value + 1,
                };
                if item >= width as u64 {
                    return Err(malformed(user, &format!("an item outside 0..{width}")));
                }
                rows.columns.push(item as u32);
                previous = Some(item);
            }
            rows.offsets.push(rows.columns.len());
        }
        Ok(rows)
    }

    /// The day of each of the `pairs` known items ([`KNOWN_DAYS`]), in their decoded order,
    /// when the file has them.
    pub(crate) fn known_days(&self, pairs: usize) -> Result<Option<Vec<i32>>, InferError> {
        if self.file.tensor(KNOWN_DAYS).is_err() {
            return Ok(None);
        }
        let days = self.vector_view(KNOWN_DAYS, Dtype::I32)?;
        if days.shape()[0] != pairs {
            return Err(tensor_error(
                KNOWN_DAYS,
                format!(
                    "{} days for {pairs} known items: one per known item",
                    days.shape()[0]
                ),
            ));
        }
        Ok(Some(
            days.data()
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect(),
        ))
    }

    /// The tensor `name`, checked to be stored as `dtype` `shape`, and marked as taken.
    fn view(
        &self,
        name: &str,
        dtype: Dtype,
        shape: &[usize],
    ) -> Result<TensorView<'a>, InferError> {
        let view = self
            .file
            .tensor(name)
            .map_err(|_| tensor_error(name, "missing"))?;
        if view.shape() != shape || view.dtype() != dtype {
            return Err(tensor_error(
                name,
                format!(
                    "stored as {:?} {:?}, the manifest needs {dtype:?} {shape:?}",
                    view.dtype(),
                    view.shape()
                ),
            ));
        }
        self.taken.borrow_mut().insert(name.to_string());
        Ok(view)
    }

    /// The 1-D tensor `name` of `dtype` and any length, marked as taken.
    fn vector_view(&self, name: &str, dtype: Dtype) -> Result<TensorView<'a>, InferError> {
        let view = self
            .file
            .tensor(name)
            .map_err(|_| tensor_error(name, "missing"))?;
        if view.dtype() != dtype || view.shape().len() != 1 {
            return Err(tensor_error(
                name,
                format!(
                    "stored as {:?} {:?}, expected {dtype:?} [n]",
                    view.dtype(),
                    view.shape()
                ),
            ));
        }
        self.taken.borrow_mut().insert(name.to_string());
        Ok(view)
    }

    /// A sparse matrix stored as rows: `rows + 1` I64 offsets (from 0, never decreasing,
    /// ending at the entry count) into I32 column indices below `width`; with `sets`, sorted
    /// and distinct within each row, else in any order (sequences).
    fn sparse_rows(
        &self,
        (offsets_name, columns_name): (&str, &str),
        rows: usize,
        width: usize,
        sets: bool,
    ) -> Result<SparseRows, InferError> {
        let offsets = self.vector_view(offsets_name, Dtype::I64)?;
        let columns = self.vector_view(columns_name, Dtype::I32)?;
        if offsets.shape()[0] != rows + 1 {
            return Err(tensor_error(
                offsets_name,
                format!("{} offsets, expected {}", offsets.shape()[0], rows + 1),
            ));
        }
        let n = columns.shape()[0];
        let offsets: Vec<i64> = offsets
            .data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
        if offsets[0] != 0 || offsets.windows(2).any(|w| w[1] < w[0]) || offsets[rows] != n as i64 {
            return Err(tensor_error(
                offsets_name,
                "must start at 0, never decrease, and end at the entry count",
            ));
        }
        let offsets: Vec<usize> = offsets.into_iter().map(|o| o as usize).collect();
        let columns: Vec<u32> = columns
            .data()
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")))
            .map(|c| u32::try_from(c).ok().filter(|&c| (c as usize) < width))
            .collect::<Option<_>>()
            .ok_or_else(|| tensor_error(columns_name, format!("an index outside 0..{width}")))?;
        if sets
            && offsets
                .windows(2)
                .any(|w| columns[w[0]..w[1]].windows(2).any(|p| p[0] >= p[1]))
        {
            return Err(tensor_error(
                columns_name,
                "each row's entries must be sorted and distinct",
            ));
        }
        Ok(SparseRows { offsets, columns })
    }
}

impl<'s> TensorSource<'s> {
    /// The source under `prefix.name`: `src.pp("blocks").pp(0)` takes `blocks.0.…`.
    pub(crate) fn pp(&self, name: impl Display) -> TensorSource<'s> {
        TensorSource {
            tensors: self.tensors,
            prefix: self.name(name),
        }
    }

    fn name(&self, name: impl Display) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// Users of the model (the manifest's user ids).
    pub(crate) fn users(&self) -> usize {
        self.tensors.users
    }

    /// Items of the model (the manifest's item ids).
    pub(crate) fn items(&self) -> usize {
        self.tensors.items
    }

    /// A spec the loader cannot build (sizes that overflow), as a manifest error.
    pub(crate) fn invalid_spec(&self, error: ember_spec::SpecError) -> InferError {
        InferError::invalid_spec(self.tensors.manifest_path, error)
    }

    /// The rows of the matrix `name` of `[rows, cols]`, as stored: int8 rows stay int8 (with
    /// their scales), anything else is decoded to f32. Refuses rows holding NaN or infinities.
    pub(crate) fn take_rows(
        &self,
        name: &str,
        rows: usize,
        cols: usize,
    ) -> Result<RowData, InferError> {
        let name = self.name(name);
        let t = self.tensors;
        if t.precision != Precision::Int8 {
            return self.take_decoded(&name, &[rows, cols]).map(RowData::F32);
        }
        let view = t.view(&name, Dtype::I8, &[rows, cols])?;
        let scale = self.take_scale(&name, rows)?;
        let q: Vec<i8> = view.data().iter().map(|&b| b as i8).collect();
        // Every value `q × scale` is finite exactly when the row's largest is.
        let finite = q.chunks(cols.max(1)).zip(&scale).all(|(row, s)| {
            let max = row.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0);
            s.is_finite() && (max as f32 * s).is_finite()
        });
        if !finite {
            return Err(tensor_error(&name, "holds NaN or infinite values"));
        }
        Ok(RowData::Int8 { q, scale })
    }

    /// The `[rows]` F32 scales of the int8 matrix `name`.
    fn take_scale(&self, name: &str, rows: usize) -> Result<Vec<f32>, InferError> {
        let view = self
            .tensors
            .view(&format!("{name}.scale"), Dtype::F32, &[rows])?;
        Ok(f32s(view.data()).collect())
    }

    /// The tensor `name` of `shape`, decoded to f32: a matrix (2-D) is stored at the
    /// manifest's precision, anything else as F32. Refuses NaN and infinities.
    pub(crate) fn take(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, InferError> {
        self.take_decoded(&self.name(name), shape)
    }

    /// A 1-D F32 tensor of `len` values (a bias, a layer norm's γ).
    pub(crate) fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, InferError> {
        self.take(name, &[len])
    }

    fn take_decoded(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, InferError> {
        let t = self.tensors;
        let dtype = match (shape.len(), t.precision) {
            (2, Precision::F16) => Dtype::F16,
            (2, Precision::Int8) => Dtype::I8,
            _ => Dtype::F32,
        };
        let view = t.view(name, dtype, shape)?;
        let raw = view.data();
        let data: Vec<f32> = match dtype {
            Dtype::F16 => raw
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            Dtype::I8 => {
                let scale = self.take_scale(name, shape[0])?;
                let cols = shape[1].max(1);
                raw.iter()
                    .enumerate()
                    .map(|(i, q)| (*q as i8) as f32 * scale[i / cols])
                    .collect()
            }
            _ => f32s(raw).collect(),
        };
        if data.iter().any(|v| !v.is_finite()) {
            return Err(tensor_error(name, "holds NaN or infinite values"));
        }
        Ok(data)
    }

    /// Each user's items ([`HISTORY_OFFSETS`], [`HISTORY_ITEMS`]), as the family's
    /// registration stores them: sets (checked sorted and distinct) or sequences.
    pub(crate) fn user_items(&self) -> Result<SparseRows, InferError> {
        let t = self.tensors;
        let sets = match t.stored {
            Stored::ItemSets => true,
            Stored::Sequences => false,
            Stored::Nothing | Stored::Ratings => {
                return Err(tensor_error(
                    HISTORY_ITEMS,
                    "this model kind takes no histories",
                ));
            }
        };
        t.sparse_rows((HISTORY_OFFSETS, HISTORY_ITEMS), t.users, t.items, sets)
    }

    /// The training ratings ([`RATINGS_OFFSETS`], [`RATINGS_COLUMNS`], [`RATINGS_VALUES`]):
    /// `rows` rows of distinct columns below `width`, sorted, with a finite rating each.
    pub(crate) fn ratings(
        &self,
        rows: usize,
        width: usize,
    ) -> Result<(SparseRows, Vec<f32>), InferError> {
        let t = self.tensors;
        let matrix = t.sparse_rows((RATINGS_OFFSETS, RATINGS_COLUMNS), rows, width, true)?;
        let values = t.vector_view(RATINGS_VALUES, Dtype::F32)?;
        if values.shape()[0] != matrix.columns.len() {
            return Err(tensor_error(
                RATINGS_VALUES,
                format!(
                    "{} values for {} columns",
                    values.shape()[0],
                    matrix.columns.len()
                ),
            ));
        }
        let values: Vec<f32> = f32s(values.data()).collect();
        if values.iter().any(|v| !v.is_finite()) {
            return Err(tensor_error(RATINGS_VALUES, "holds NaN or infinite values"));
        }
        Ok((matrix, values))
    }
}
