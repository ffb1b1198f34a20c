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

impl ColumnEncoder {
    /// Fits a categorical column: the distinct known values, sorted byte-wise.
    pub fn categorical<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        ColumnEncoder::Categorical {
            vocabulary: vocabulary(values),
        }
    }

    /// Fits a multi-valued column: the distinct values of every field split on `separator`.
    pub fn multi<'a>(separator: &str, values: impl IntoIterator<Item = &'a str>) -> Self {
        let parts = values.into_iter().flat_map(|v| split(v, separator));
        ColumnEncoder::Multi {
            separator: separator.into(),
            vocabulary: vocabulary(parts),
        }
    }

    /// Fits a standardised number: the mean and population standard deviation of `values`
    /// (scale 1 when they are all equal, or when there are none).
    pub fn standard(values: &[f64]) -> Self {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let variance = values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        let scale = if variance > 0.0 { variance.sqrt() } else { 1.0 };
        ColumnEncoder::Standard { mean, scale }
    }

    /// Fits quantile buckets: the edges at the `buckets`-quantiles of `values` (the value at
    /// rank ⌊k·n / buckets⌋ of the sorted values, for k = 1 … buckets − 1), each kept once, so
    /// that a value repeated across a quantile gives fewer buckets rather than empty ones.
    pub fn quantiles(values: &[f64], buckets: usize) -> Self {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mut edges: Vec<f64> = Vec::new();
        if !sorted.is_empty() {
            for k in 1..buckets {
                let edge = sorted[(k * sorted.len() / buckets).min(sorted.len() - 1)];
                if edges.last().is_none_or(|&last| edge > last) {
                    edges.push(edge);
                }
            }
        }
        ColumnEncoder::Quantiles { edges }
    }

    /// The column's features for one raw value (`None` or empty: missing), as `(feature,
    /// value)` within the column (feature 0 is its unknown bucket), ascending. A number that
    /// does not parse is an error saying so.
    pub fn encode(&self, raw: Option<&str>) -> Result<Vec<(u32, f32)>, String> {
        let raw = raw.map(str::trim).filter(|r| !r.is_empty());
        let unknown = vec![(0, 1.0)];
        let position = |vocabulary: &[String], v: &str| {
            vocabulary
                .binary_search_by(|w| w.as_str().cmp(v))
                .ok()
                .map(|i| i as u32 + 1)
        };
        Ok(match (self, raw) {
            (_, None) => unknown,
            (ColumnEncoder::Categorical { vocabulary }, Some(v)) => {
                position(vocabulary, v).map_or(unknown, |f| vec![(f, 1.0)])
            }
            (
                ColumnEncoder::Multi {
                    separator,
                    vocabulary,
                },
                Some(v),
            ) => {
                let mut known: Vec<u32> = split(v, separator)
                    .filter_map(|part| position(vocabulary, part))
                    .collect();
                known.sort_unstable();
                known.dedup();
                let share = 1.0 / known.len().max(1) as f32;
                match known.is_empty() {
                    true => unknown,
                    false => known.into_iter().map(|f| (f, share)).collect(),
                }
            }
            (ColumnEncoder::Standard { mean, scale }, Some(v)) => {
                let x = number(v)?;
                vec![(1, ((x - mean) / scale) as f32)]
            }
            (ColumnEncoder::Quantiles { edges }, Some(v)) => {
                let x = number(v)?;
                let bucket = edges.iter().take_while(|&&e| e <= x).count();
                vec![(1 + bucket as u32, 1.0)]
            }
        })
    }
}

/// Reads a number of a numeric attribute.
pub fn number(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(format!("`{text}` is not a number")),
    }
}

/// The non-empty parts of a multi-valued field, trimmed.
fn split<'a>(value: &'a str, separator: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    value
        .split(separator)
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

/// The distinct non-empty values, sorted byte-wise.
fn vocabulary<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut vocabulary: Vec<String> = values
        .into_iter()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(String::from)
        .collect();
    vocabulary.sort_unstable();
    vocabulary.dedup();
    vocabulary
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

    /// Encodes one user's or item's raw values (one per column, in `columns`' order; `None`
    /// for a missing row or value) into their features in the side's feature space,
    /// ascending. A value a numeric column cannot read is an error naming the column.
    pub fn encode(&self, raw: &[Option<&str>]) -> Result<Vec<(u32, f32)>, String> {
        let mut features = Vec::new();
        for ((column, offset), value) in self.columns.iter().zip(self.offsets()).zip(raw) {
            let encoded = column
                .encoder
                .encode(*value)
                .map_err(|e| format!("attribute `{}`: {e}", column.name))?;
            features.extend(encoded.into_iter().map(|(f, v)| (offset as u32 + f, v)));
        }
        Ok(features)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoders_fit_and_encode_as_the_table_says() {
        let genres = ColumnEncoder::multi("|", ["Comedy|Action", "Drama", "", "Action"]);
        assert_eq!(
            genres,
            ColumnEncoder::Multi {
                separator: "|".into(),
                vocabulary: vec!["Action".into(), "Comedy".into(), "Drama".into()],
            }
        );
        assert_eq!(
            genres.encode(Some("Drama|Action|Western")).unwrap(),
            [(1, 0.5), (3, 0.5)]
        );
        assert_eq!(genres.encode(Some("Western")).unwrap(), [(0, 1.0)]);
        let band = ColumnEncoder::categorical(["25-34", "18-24", "25-34"]);
        assert_eq!(band.encode(Some("25-34")).unwrap(), [(2, 1.0)]);
        assert_eq!(band.encode(None).unwrap(), [(0, 1.0)]);
        // Mean 4, population standard deviation 2.
        let age = ColumnEncoder::standard(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(
            age,
            ColumnEncoder::Standard {
                mean: 5.0,
                scale: 2.0
            }
        );
        assert_eq!(age.encode(Some("8")).unwrap(), [(1, 1.5)]);
        assert_eq!(age.encode(Some("")).unwrap(), [(0, 1.0)]);
        assert_eq!(
            age.encode(Some("old")).unwrap_err(),
            "`old` is not a number"
        );
        assert_eq!(
            ColumnEncoder::standard(&[3.0, 3.0]),
            ColumnEncoder::Standard {
                mean: 3.0,
                scale: 1.0
            }
        );
        // Ten values in 4 buckets: ranks 2, 5, 7 of 0..10 → edges 2, 5, 7.
        let values: Vec<f64> = (0..10).map(f64::from).collect();
        let price = ColumnEncoder::quantiles(&values, 4);
        assert_eq!(
            price,
            ColumnEncoder::Quantiles {
                edges: vec![2.0, 5.0, 7.0]
            }
        );
        assert_eq!(price.width(), 5);
        for (x, feature) in [("1", 1), ("2", 2), ("6.5", 3), ("7", 4), ("100", 4)] {
            assert_eq!(price.encode(Some(x)).unwrap(), [(feature, 1.0)], "{x}");
        }
        // A value repeated across quantiles: one edge, two buckets.
        assert_eq!(
            ColumnEncoder::quantiles(&[1.0, 1.0, 1.0, 1.0, 9.0], 4),
            ColumnEncoder::Quantiles { edges: vec![1.0] }
        );
    }

    #[test]
    fn a_schema_lays_its_columns_end_to_end() {
        let schema = AttributeSchema {
            columns: vec![
                AttributeColumn {
                    name: "band".into(),
                    encoder: ColumnEncoder::categorical(["a", "b"]),
                },
                AttributeColumn {
                    name: "age".into(),
                    encoder: ColumnEncoder::Standard {
                        mean: 30.0,
                        scale: 10.0,
                    },
                },
            ],
        };
        assert_eq!((schema.width(), schema.offsets()), (5, vec![0, 3]));
        assert_eq!(
            schema.encode(&[Some("b"), Some("45")]).unwrap(),
            [(2, 1.0), (4, 1.5)]
        );
        assert_eq!(schema.encode(&[None, None]).unwrap(), [(0, 1.0), (3, 1.0)]);
        assert_eq!(
            schema.encode(&[Some("a"), Some("x")]).unwrap_err(),
            "attribute `age`: `x` is not a number"
        );
    }
}
