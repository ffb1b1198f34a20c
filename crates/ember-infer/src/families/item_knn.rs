//! ItemKNN (Sarwar et al., "Item-Based Collaborative Filtering Recommendation Algorithms",
//! WWW 2001): each item's neighbours, the items most similar to it by the cosine of their
//! users, and a user scores item `i` by `Σ_{j ∈ N(i) ∩ I_u} sim(i, j)` over their own items
//! `I_u`. The export stores the neighbour lists and each user's training items (a set), so any
//! user, a new customer given by a history included, is scored from their items, as the
//! training side scores them and in the same order of summation (ascending `j`): the scores
//! are equal at f32.
//!
//! Explanations are the model itself, "people who took X took Y": the weight of each of the
//! user's items `j` in the score of `i` is `sim(i, j)` when `j` is one of `i`'s neighbours
//! (the weights sum to the score). A user's vector is their item row (1 for each training
//! item), which is what the model scores from. Scores are sums of similarities, not logits:
//! they are read as next-item logits (their softmax over the catalogue), which keeps each
//! customer's order of items and shows unrelated items as unlikely, uncalibrated as it is.

use ember_spec::{ItemKnnSpec, SpecError};

use super::{ById, Family, Subject, Unexplained, item_set};
use crate::source::{SparseRows, TensorSource};
use crate::{InferError, ScoreScale};

/// The largest catalogue whose item ids F32 values hold exactly (2^24): the neighbours'
/// ids are stored as F32, the one dtype the writer keeps at every precision.
const EXACT_ITEM_IDS: usize = 1 << 24;

/// ItemKNN's neighbour lists, indexed both ways, with every user's training items.
#[derive(Debug)]
pub(super) struct ItemKnn {
    /// Neighbours per item: the width of a row of `neighbours` and `similarity`.
    width: usize,
    /// `[items × width]` each item's neighbours, most similar first.
    neighbours: Vec<u32>,
    /// `[items × width]` their similarities.
    similarity: Vec<f32>,
    /// For each item `j`, the items `i` that have it as a neighbour, with `sim(i, j)`, by
    /// ascending `i`.
    by_neighbour: Vec<Vec<(u32, f32)>>,
    /// Each user's training items, sorted and distinct.
    history: SparseRows,
}

/// `Err` when a catalogue of `items` items has ids that F32 values do not all hold exactly.
fn check_catalogue(items: usize) -> Result<(), InferError> {
    if items > EXACT_ITEM_IDS {
        return Err(InferError::Tensor {
            name: "neighbours.item".into(),
            message: format!(
                "item_knn stores item ids as F32 values, exact for catalogues of up to \
                 {EXACT_ITEM_IDS} items; this one has {items}"
            ),
        });
    }
    Ok(())
}

impl ItemKnn {
    /// `neighbours.similarity` `[items, neighbours]` and `neighbours.item`
    /// `[items × neighbours]` (whole numbers below `items`), and the users' item sets.
    pub(super) fn load(spec: &ItemKnnSpec, src: &TensorSource<'_>) -> Result<Self, InferError> {
        let (items, width) = (src.items(), spec.neighbours);
        check_catalogue(items)?;
        let cells = items
            .checked_mul(width)
            .ok_or_else(|| src.invalid_spec(SpecError::Overflow))?;
        let similarity = src.take("neighbours.similarity", &[items, width])?;
        let neighbours = src
            .take("neighbours.item", &[cells])?
            .into_iter()
            .map(|v| (v >= 0.0 && v.fract() == 0.0 && (v as usize) < items).then_some(v as u32))
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| InferError::Tensor {
                name: "neighbours.item".into(),
                message: format!(
                    "holds a value that is not an item id (a whole number in 0..{items})"
                ),
            })?;
        let mut by_neighbour: Vec<Vec<(u32, f32)>> = vec![Vec::new(); items];
        for (cell, (&j, &s)) in neighbours.iter().zip(&similarity).enumerate() {
            let i = cell / width.max(1);
            // An item filling its own row's empty slots adds nothing.
            if j as usize != i {
                by_neighbour[j as usize].push((i as u32, s));
            }
        }
        Ok(Self {
            width,
            neighbours,
            similarity,
            by_neighbour,
            history: src.user_items()?,
        })
    }

    /// Scores of every item for a user whose items are `own` (sorted, distinct), into `out`,
    /// summed in ascending order of the user's items, as the training side sums them.
    fn scores(&self, own: &[u32], out: &mut Vec<f32>) {
        out.clear();
        out.resize(self.by_neighbour.len(), 0.0);
        for &j in own {
            for &(i, s) in &self.by_neighbour[j as usize] {
                out[i as usize] += s;
            }
        }
    }

    /// Item `i`'s neighbours with their similarities.
    fn row(&self, i: usize) -> impl Iterator<Item = (u32, f32)> + '_ {
        let range = i * self.width..(i + 1) * self.width;
        self.neighbours[range.clone()]
            .iter()
            .copied()
            .zip(self.similarity[range].iter().copied())
    }
}

impl Family for ItemKnn {
    fn user_row(&self, user: usize, out: &mut Vec<f32>) {
        self.scores(self.history.row(user), out);
    }

    /// The items as a set: order and repeats do not matter.
    fn history_row(&self, items: &[u32], out: &mut Vec<f32>) -> Result<(), ById> {
        self.scores(&item_set(items), out);
        Ok(())
    }

    /// Each of the subject's items that is a neighbour of the target, by its similarity: the
    /// terms of the target's score.
    fn explain(
        &self,
        subject: Subject<'_>,
        targets: &[usize],
    ) -> Result<Vec<Vec<(u32, f32)>>, Unexplained> {
        let own = match subject {
            Subject::User { user, .. } => self.history.row(user).to_vec(),
            Subject::History(items) => item_set(items),
        };
        Ok(targets
            .iter()
            .map(|&t| {
                self.row(t)
                    .filter(|&(j, _)| j as usize != t && own.binary_search(&j).is_ok())
                    .collect()
            })
            .collect())
    }

    /// The user's item row: 1 for each of their training items.
    fn user_vector(&self, user: usize) -> Result<Vec<f32>, InferError> {
        let mut row = vec![0.0; self.by_neighbour.len()];
        for &i in self.history.row(user) {
            row[i as usize] = 1.0;
        }
        Ok(row)
    }

    fn score_scale(&self) -> ScoreScale {
        ScoreScale::NextItemLogits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::{load_in_memory, tensor, test_manifest};
    use crate::{Key, ModelData, ModelSpec, Precision};

    /// Three items: item 0's neighbours are 1 (0.5) and 2 (0.25), item 1's is 0 (0.5), item 2's
    /// is 0 (0.25); rows are filled with the item itself at 0.
    fn export(precision: Precision, ids: &[f32]) -> Result<crate::ExportedModel, InferError> {
        let manifest = test_manifest(
            ModelSpec::ItemKnn(ItemKnnSpec {
                neighbours: 2,
                shrinkage: 0.0,
            }),
            precision,
            2,
            3,
        );
        let tensors = vec![
            tensor(
                "neighbours.similarity",
                &[3, 2],
                &[0.5, 0.25, 0.5, 0.0, 0.25, 0.0],
            ),
            tensor("neighbours.item", &[6], ids),
        ];
        // User 10 took item 100 (internal 0); user 11 took items 101 and 102.
        let histories = vec![vec![0], vec![2, 1, 2]];
        load_in_memory(&manifest, &tensors, ModelData::Histories(&histories))
    }

    const IDS: [f32; 6] = [1.0, 2.0, 0.0, 1.0, 0.0, 2.0];

    #[test]
    fn scores_sum_the_similarities_of_the_users_items_among_the_neighbours() {
        let model = export(Precision::F32, &IDS).unwrap();
        assert_eq!(model.item_scores_internal(0), vec![0.0, 0.5, 0.25]);
        assert_eq!(model.item_scores_internal(1), vec![0.75, 0.0, 0.0]);
        // A new customer who took items 101 and 102 is scored as user 11.
        let keys = |ids: &[i64]| -> Vec<Key> { ids.iter().map(|&i| Key::Integer(i)).collect() };
        let top = model
            .recommend_history(&keys(&[102, 101, 102]), 1, &[])
            .unwrap();
        assert_eq!((&top[0].id, top[0].score), (&Key::Integer(100), 0.75));
        // People who took 101 and 102 took 100: 101 weighs 0.5, 102 weighs 0.25.
        let because = model.explain(&Key::Integer(11), &keys(&[100]), 5).unwrap();
        let named: Vec<(Key, f32)> = because[0]
            .iter()
            .map(|b| (b.item.clone(), b.weight))
            .collect();
        assert_eq!(
            named,
            vec![(Key::Integer(101), 0.5), (Key::Integer(102), 0.25)]
        );
        assert_eq!(
            model.user_vector(&Key::Integer(11)).unwrap(),
            vec![0.0, 1.0, 1.0]
        );
        assert_eq!(model.score_scale(), ScoreScale::NextItemLogits);
    }

    #[test]
    fn neighbour_ids_must_be_item_ids() {
        for bad in [3.0, -1.0, 0.5] {
            let mut ids = IDS;
            ids[4] = bad;
            let err = export(Precision::F32, &ids).unwrap_err().to_string();
            assert_eq!(
                err,
                "tensor `neighbours.item`: holds a value that is not an item id (a whole number \
                 in 0..3)"
            );
        }
        // At f16 the similarities are halved in size, the ids stay exact.
        let model = export(Precision::F16, &IDS).unwrap();
        assert_eq!(model.item_scores_internal(1), vec![0.75, 0.0, 0.0]);
    }

    #[test]
    fn catalogues_beyond_exact_f32_ids_are_refused() {
        assert!(check_catalogue(1 << 24).is_ok());
        let err = check_catalogue((1 << 24) + 1).unwrap_err().to_string();
        assert_eq!(
            err,
            "tensor `neighbours.item`: item_knn stores item ids as F32 values, exact for \
             catalogues of up to 16777216 items; this one has 16777217"
        );
    }
}
