//! What is known about customers and products (`[data.users]`, `[data.items]`) as a model and
//! an export see it: each attribute column's encoder, fitted on the training data, and one
//! side's attributes as an export carries them.
//!
//! The encoders live here, beside the other contracts, because both sides run them: ember-data
//! fits them and encodes the training rows; ember-infer encodes a served or new customer's raw
//! values with the encoders stored in the export, so that they are encoded exactly as in
//! training. Nothing here reads a file.
//!
//! # The feature space
//!
//! A side's columns are laid end to end in one feature space, in the config's order; a column
//! takes [`ColumnEncoder::width`] features, and its first feature is always its "unknown"
//! bucket (a missing row or value, or a value training never saw):
//!
//! | encoder | width | a row's features |
//! |---|---|---|
//! | categorical | vocabulary + 1 | its value's feature, 1.0 (unknown: feature 0) |
//! | multi-valued | vocabulary + 1 | each of its values' features, 1/n each (none known: feature 0) |
//! | standardised number | 2 | feature 1 with `(x − mean) / scale` (unknown: feature 0, 1.0) |
//! | quantile buckets | edges + 2 | its bucket's feature, 1.0 (unknown: feature 0) |

use serde::{Deserialize, Serialize};

/// How one attribute column is encoded, as fitted on the training data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ColumnEncoder {
    /// One value per row; the vocabulary is the values seen in training, sorted byte-wise.
    /// Feature `1 + i` is `vocabulary[i]`.
    Categorical {
        /// The known values.
        vocabulary: Vec<String>,
    },
    /// Several values per row, split on `separator` (genres `Action|Comedy`, tags); empty
    /// parts are ignored. Feature `1 + i` is `vocabulary[i]`.
    Multi {
        /// The separator between values.
        separator: String,
        /// The known values, sorted byte-wise.
        vocabulary: Vec<String>,
    },
    /// A number, standardised with the training rows' mean and (population) standard
    /// deviation; a column with one value throughout has scale 1.
    Standard {
        /// The mean of the known training values.
        mean: f64,
        /// Their standard deviation (1 when it is 0).
        scale: f64,
    },
    /// A number, bucketed by quantiles of the training values: bucket `b` (feature `1 + b`)
    /// holds the values `edges[b - 1] <= x < edges[b]`, bucket 0 those below `edges[0]`.
    Quantiles {
        /// The bucket edges, strictly ascending.
        edges: Vec<f64>,
    },
}

impl ColumnEncoder {
    /// The number of features the column takes, its unknown bucket included.
    pub fn width(&self) -> usize {
        match self {
            ColumnEncoder::Categorical { vocabulary } | ColumnEncoder::Multi { vocabulary, .. } => {
                vocabulary.len() + 1
            }
            ColumnEncoder::Standard { .. } => 2,
            ColumnEncoder::Quantiles { edges } => edges.len() + 2,
        }
    }
}

/// One encoded column: its name in the source and its encoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeColumn {
    /// The column's name in the source.
    pub name: String,
    /// How its values are encoded.
    pub encoder: ColumnEncoder,
}

/// One side's (users' or items') encoded columns, in the config's order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AttributeSchema {
    /// The encoded columns.
    pub columns: Vec<AttributeColumn>,
}

impl AttributeSchema {
    /// The size of the side's feature space: the columns' widths summed.
    pub fn width(&self) -> usize {
        self.columns.iter().map(|c| c.encoder.width()).sum()
    }

    /// Where each column's features start in the feature space.
    pub fn offsets(&self) -> Vec<usize> {
        let mut start = 0;
        self.columns
            .iter()
            .map(|c| {
                let offset = start;
                start += c.encoder.width();
                offset
            })
            .collect()
    }
}

/// Rows of sparse features, one row per user or item (compressed sparse rows).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FeatureRows {
    /// Row `r`'s entries are `offsets[r]..offsets[r + 1]`; `rows + 1` long.
    pub offsets: Vec<u32>,
    /// Feature indices in the side's feature space, ascending within a row.
    pub indices: Vec<u32>,
    /// The features' values.
    pub values: Vec<f32>,
}

impl FeatureRows {
    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Row `r`'s (index, value) entries.
    pub fn row(&self, r: usize) -> impl Iterator<Item = (u32, f32)> + '_ {
        let range = self.offsets[r] as usize..self.offsets[r + 1] as usize;
        self.indices[range.clone()]
            .iter()
            .copied()
            .zip(self.values[range].iter().copied())
    }
}

/// One side's attributes as an export carries them (the `attributes` extension of a
/// manifest): the encoders, and per user or item of the model, in the order of its id list,
/// its display text and its encoded features.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SideAttributes {
    /// The encoders.
    pub schema: AttributeSchema,
    /// Each user's label or item's name (the `label` or `name` column); `None` where the
    /// table has none for it. Absent when the table names no such column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<Vec<Option<String>>>,
    /// Each user's or item's encoded features; absent where the export leaves them out (a
    /// model that does not read attributes need not carry its users' rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<FeatureRows>,
}

/// The `attributes` extension of an export's manifest.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExportedAttributes {
    /// The users' attributes, when the run had a `[data.users]` table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<SideAttributes>,
    /// The items' attributes, when the run had a `[data.items]` table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<SideAttributes>,
}

/// The name of the manifest extension that holds [`ExportedAttributes`].
pub const ATTRIBUTES_EXTENSION: &str = "attributes";
