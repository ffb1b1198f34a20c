//! AutoRec (Sedhain et al., "AutoRec: Autoencoders Meet Collaborative Filtering", WWW 2015):
//! `h(r) = W σ(V r + μ) + b` (eq. 2) reconstructs a row of the training rating matrix (an
//! item's ratings by every user for I-AutoRec, a user's ratings of every item for U-AutoRec);
//! a pair's score is its predicted rating, clipped to the training ratings' range. The export
//! stores the training ratings, so only the users of the training data are scored.
//!
//! Explanations: U-AutoRec by occlusion (an item's weight is the drop in the recommended
//! item's predicted rating when the user's rating of it is removed from their row; beyond
//! [`super::MAX_OCCLUDED`] rated items, those with the largest `|r_j| ‖V[j]‖` are removed);
//! I-AutoRec, whose input for a pair is the recommended item's own column of ratings (the
//! user's other ratings never enter), by the cosine similarity of item codes
//! `σ(V r_i + μ)` between the recommended item and each of the user's known items. User
//! vectors: U-AutoRec the code of the user's row, `σ(V r_u + μ)`; I-AutoRec has none.

use ember_spec::AutoRecSpec;

use super::{
    Family, Subject, Unexplained, cosine_because, occlusion_because, occlusion_candidates,
    pair_scores_by_row,
};
use crate::nn::{Dense, sigmoid};
use crate::source::{SparseRows, TensorSource};
use crate::{InferError, ScoreScale};

/// AutoRec with the training ratings.
#[derive(Debug, Clone)]
pub(super) struct AutoRec {
    encoder: Dense,
    decoder: Dense,
    /// Rows are items (columns users) when true; users (columns items) otherwise.
    item_based: bool,
    /// Row `r`'s rated columns, and their ratings `values[offsets[r]..offsets[r + 1]]`.
    ratings: SparseRows,
    values: Vec<f32>,
    /// Users and items with a training rating; the others are predicted the midpoint.
    seen_users: Vec<bool>,
    seen_items: Vec<bool>,
    /// The training ratings' range, to which predictions are clipped.
    low: f32,
    high: f32,
}

impl AutoRec {
    /// The training ratings, `encoder` `[width, hidden]` and `decoder` `[hidden, width]`.
    pub(super) fn load(spec: &AutoRecSpec, src: &TensorSource<'_>) -> Result<Self, InferError> {
        let (users, items) = (src.users(), src.items());
        let (rows, width) = if spec.item_based {
            (items, users)
        } else {
            (users, items)
        };
        let (ratings, values) = src.ratings(rows, width)?;
        let (mut seen_users, mut seen_items) = (vec![false; users], vec![false; items]);
        let (mut low, mut high) = (f32::INFINITY, f32::NEG_INFINITY);
        for r in 0..rows {
            let row = ratings.offsets[r]..ratings.offsets[r + 1];
            for (&c, &v) in ratings.columns[row.clone()].iter().zip(&values[row]) {
                let (u, i) = if spec.item_based {
                    (c as usize, r)
                } else {
                    (r, c as usize)
                };
                seen_users[u] = true;
                seen_items[i] = true;
                low = low.min(v);
                high = high.max(v);
            }
        }
        if !low.is_finite() {
            (low, high) = (0.0, 0.0);
        }
        Ok(Self {
            encoder: Dense::load(&src.pp("encoder"), width, spec.hidden)?,
            decoder: Dense::load(&src.pp("decoder"), spec.hidden, width)?,
            item_based: spec.item_based,
            ratings,
            values,
            seen_users,
            seen_items,
            low,
            high,
        })
    }

    /// Row `r`'s `(column, rating)` entries.
    fn entries(&self, r: usize) -> impl Iterator<Item = (u32, f32)> + '_ {
        let range = self.ratings.offsets[r]..self.ratings.offsets[r + 1];
        self.ratings.columns[range.clone()]
            .iter()
            .copied()
            .zip(self.values[range].iter().copied())
    }

    /// The code `σ(V r + μ)` of a row given by its `(column, rating)` entries.
    fn code(&self, entries: impl Iterator<Item = (u32, f32)>) -> Vec<f32> {
        let mut h = self.encoder.bias.clone();
        for (c, v) in entries {
            for (o, w) in h.iter_mut().zip(self.encoder.weight.row(c as usize)) {
                *o += v * w;
            }
        }
        h.iter_mut().for_each(|x| *x = sigmoid(*x));
        h
    }

    /// The reconstructed row `r` (one predicted rating per column, unclipped).
    fn decode(&self, r: usize, out: &mut Vec<f32>) {
        self.decoder.apply(&self.code(self.entries(r)), out);
    }

    /// (row, column) of a (user, item) pair.
    fn cell(&self, u: usize, i: usize) -> (usize, usize) {
        if self.item_based { (i, u) } else { (u, i) }
    }

    /// The predicted rating of (u, i), given the decoded row of the pair's row.
    fn rating(&self, u: usize, i: usize, decoded: &[f32]) -> f32 {
        self.clip(u, i, decoded[self.cell(u, i).1])
    }

    /// The predicted rating of (u, i) from its unclipped reconstruction `raw`.
    fn clip(&self, u: usize, i: usize, raw: f32) -> f32 {
        if !self.seen_users[u] || !self.seen_items[i] {
            return (self.low + self.high) / 2.0;
        }
        raw.clamp(self.low, self.high)
    }
}

impl Family for AutoRec {
    /// One user's row: [`Family::user_scores`] of a batch of one.
    fn user_row(&self, user: usize, out: &mut Vec<f32>) {
        *out = self.user_scores(&[user]).swap_remove(0);
    }

    fn user_scores(&self, users: &[usize]) -> Vec<Vec<f32>> {
        let n = self.seen_items.len();
        let mut out = vec![vec![0.0f32; n]; users.len()];
        let mut decoded = Vec::new();
        if self.item_based {
            // Each item's row once for the whole batch of users.
            for i in 0..n {
                self.decode(i, &mut decoded);
                for (&u, scores) in users.iter().zip(out.iter_mut()) {
                    scores[i] = self.rating(u, i, &decoded);
                }
            }
        } else {
            for (&u, scores) in users.iter().zip(out.iter_mut()) {
                self.decode(u, &mut decoded);
                for (i, s) in scores.iter_mut().enumerate() {
                    *s = self.rating(u, i, &decoded);
                }
            }
        }
        out
    }

    /// One decode per distinct row of the pairs (an item's for I-AutoRec, so an audience
    /// decodes one row).
    fn pair_scores(&self, pairs: &[(usize, usize)]) -> Vec<f32> {
        pair_scores_by_row(
            pairs,
            |u, i| self.cell(u, i).0,
            |row, _, out| self.decode(row, out),
            |u, i, decoded| self.rating(u, i, decoded),
        )
    }

    fn explain(
        &self,
        subject: Subject<'_>,
        targets: &[usize],
    ) -> Result<Vec<Vec<(u32, f32)>>, Unexplained> {
        let (user, known) = match subject {
            Subject::User { user, known } => (user, known),
            Subject::History(_) => return Err(Unexplained::ById(super::ById)),
        };
        if self.item_based {
            let known = known.ok_or(Unexplained::NoKnownItems)?;
            return Ok(cosine_because(targets, known, |i| {
                self.code(self.entries(i))
            }));
        }
        // U-AutoRec: the user's rated items, occluded one at a time.
        let rated: Vec<u32> = self.entries(user).map(|(c, _)| c).collect();
        let strength = |c: u32| {
            let rating = self
                .entries(user)
                .find(|&(j, _)| j == c)
                .map_or(0.0, |(_, v)| v);
            let row = self.encoder.weight.row(c as usize);
            rating.abs() * row.iter().map(|w| w * w).sum::<f32>().sqrt()
        };
        let candidates = occlusion_candidates(&rated, strength);
        Ok(occlusion_because(&rated, &candidates, targets, |kept| {
            // `kept` is the sorted rated columns less one.
            let entries = self
                .entries(user)
                .filter(|(c, _)| kept.binary_search(c).is_ok());
            let h = self.code(entries);
            let w = &self.decoder.weight;
            targets
                .iter()
                .map(|&t| {
                    let raw = self.decoder.bias[t]
                        + h.iter()
                            .enumerate()
                            .map(|(j, x)| x * w.data[j * w.cols + t])
                            .sum::<f32>();
                    self.clip(user, t, raw)
                })
                .collect()
        }))
    }

    /// U-AutoRec: the code of the user's row.
    fn user_vector(&self, user: usize) -> Result<Vec<f32>, InferError> {
        if self.item_based {
            return Err(InferError::Unsupported(
                "model kind `autorec` with `item_based: true` (I-AutoRec) encodes items, not \
                 users: it has no user vector; segment customers with another model"
                    .into(),
            ));
        }
        Ok(self.code(self.entries(user)))
    }

    fn score_scale(&self) -> ScoreScale {
        ScoreScale::Ratings {
            low: self.low,
            high: self.high,
        }
    }
}
