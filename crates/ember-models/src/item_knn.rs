//! ItemKNN (Sarwar et al., "Item-Based Collaborative Filtering Recommendation Algorithms",
//! WWW 2001), on binary interactions as Deshpande & Karypis ("Item-Based Top-N Recommendation
//! Algorithms", TOIS 2004) rank top-N lists with it.
//!
//! Two items are as similar as the users they share, by the cosine of their columns of the
//! binary user × item matrix (section 3.1.1), shrunk by `λ` as RecBole's ItemKNN does:
//! `sim(i, j) = |U_i ∩ U_j| / (√|U_i| √|U_j| + λ)`. Each item keeps its `k` most similar items
//! `N_k(i)` (the item itself never among them), and a user scores item `i` by the similarities
//! of its neighbours among the user's own items: `ŷ_ui = Σ_{j ∈ N_k(i) ∩ I_u} sim(i, j)`
//! (Deshpande & Karypis' section 4.1, without their row normalisation).
//!
//! The model is fitted in one pass when it is built, from [`ModelInit::train`], on the host; it
//! has no trainable parameters ([`ModelSettings::fitted_at_init`]). It reads each user's items
//! (`Input::UserRows`), so it scores any user from their items, one it was not built from
//! included. Every score sums its terms in ascending order of the user's item `j`, as
//! ember-infer does, so that the export scores exactly as the model.

use std::sync::Arc;

use burn::prelude::*;
use ember_spec::{ItemKnnSpec, ModelSpec};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::ModelError;
use crate::{
    Batch, Export, Input, ModelFamily, ModelInit, ModelSettings, Query, Recommender, kinds,
};

/// ItemKNN hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ItemKnnConfig {
    /// Neighbours kept per item (`k`).
    pub neighbours: usize,
    /// `λ`, added to the similarity's denominator: it lowers the similarity of items with few
    /// users, whose cosine rests on little evidence (0: the plain cosine).
    pub shrinkage: f64,
}

impl Default for ItemKnnConfig {
    /// RecBole's defaults: 100 neighbours, the plain cosine.
    fn default() -> Self {
        Self {
            neighbours: 100,
            shrinkage: 0.0,
        }
    }
}

impl ItemKnnConfig {
    fn spec(&self) -> ItemKnnSpec {
        ItemKnnSpec {
            neighbours: self.neighbours,
            shrinkage: self.shrinkage,
        }
    }

    /// Fits the model: every item's neighbours, from the training interactions.
    pub fn init(&self, init: &ModelInit, _device: &Device) -> ItemKnn {
        ItemKnn {
            neighbours: Arc::new(Neighbours::fit(
                init.train,
                init.items,
                self.neighbours,
                self.shrinkage,
            )),
            shrinkage: self.shrinkage,
        }
    }
}

impl ModelFamily for kinds::ItemKnn {
    type Config = ItemKnnConfig;
    type Model = ItemKnn;

    /// The defaults: 100 neighbours, the plain cosine.
    fn bench_preset() -> ItemKnnConfig {
        ItemKnnConfig {
            neighbours: 100,
            shrinkage: 0.0,
        }
    }
}

impl ModelSettings for ItemKnnConfig {
    fn input(&self) -> Input {
        Input::UserRows { by_id: false }
    }

    fn validate(&self) -> Result<(), ModelError> {
        Ok(self.spec().validate()?)
    }

    /// None: the neighbour lists are fitted, not trained (see [`Self::held_values`]).
    fn parameter_count(&self, _users: usize, _items: usize) -> u128 {
        0
    }

    /// Each item's `k` neighbour ids and similarities, and the same entries indexed by
    /// neighbour for scoring: `4 k` four-byte values per item.
    fn held_values(&self, _users: usize, items: usize) -> u128 {
        (items as u128)
            .saturating_mul(self.neighbours as u128)
            .saturating_mul(4)
    }

    fn fitted_at_init(&self) -> bool {
        true
    }
}

/// Each item's neighbours: the `k` items most similar to it, and the same lists indexed the
/// other way, by neighbour, for scoring.
#[derive(Debug)]
pub struct Neighbours {
    /// Neighbours per item (`k`): the width of a row of `items` and `similarity`.
    width: usize,
    /// `[items × width]`: each item's neighbours, most similar first (ties by item id), the
    /// item itself at similarity 0 filling the slots of an item with fewer neighbours.
    items: Vec<u32>,
    /// `[items × width]`: their similarities.
    similarity: Vec<f32>,
    /// For each item `j`, the items `i` that have it as a neighbour, with `sim(i, j)`, by
    /// ascending `i`.
    by_neighbour: Vec<Vec<(u32, f32)>>,
}

impl Neighbours {
    /// The neighbours of each of `items` items from each user's items in `train`, `k` per
    /// item, with shrinkage `λ`: one pass over the item–item co-occurrences, items in parallel.
    pub fn fit(train: &[Vec<u32>], items: usize, k: usize, shrinkage: f64) -> Self {
        let sets: Vec<Vec<u32>> = train.iter().map(|row| item_set(row)).collect();
        let mut users_of: Vec<Vec<u32>> = vec![Vec::new(); items];
        for (u, set) in sets.iter().enumerate() {
            for &i in set {
                users_of[i as usize].push(u as u32);
            }
        }
        let rows: Vec<Vec<(u32, f32)>> = (0..items)
            .into_par_iter()
            .map_init(
                || vec![0u32; items],
                |shared, i| nearest(i, &sets, &users_of, shared, k, shrinkage),
            )
            .collect();
        Self::from_rows(&rows, k)
    }

    /// The lists of `rows` (each at most `width` long, most similar first), padded.
    fn from_rows(rows: &[Vec<(u32, f32)>], width: usize) -> Self {
        let n = rows.len();
        let (mut items, mut similarity) = (Vec::with_capacity(n * width), Vec::new());
        let mut by_neighbour: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n];
        for (i, row) in rows.iter().enumerate() {
            for &(j, s) in row {
                by_neighbour[j as usize].push((i as u32, s));
            }
            items.extend(row.iter().map(|&(j, _)| j));
            similarity.extend(row.iter().map(|&(_, s)| s));
            items.resize((i + 1) * width, i as u32);
            similarity.resize((i + 1) * width, 0.0);
        }
        Self {
            width,
            items,
            similarity,
            by_neighbour,
        }
    }

    /// Items in the catalogue.
    fn num_items(&self) -> usize {
        self.by_neighbour.len()
    }

    /// Scores of every item for a user whose items are `own` (sorted and distinct), into
    /// `out`: `Σ_{j ∈ N(i) ∩ own} sim(i, j)`, summed in ascending order of `j`.
    ///
    /// # Shapes
    /// - out: `[items]`
    pub fn scores(&self, own: &[u32], out: &mut [f32]) {
        out.fill(0.0);
        for &j in own {
            for &(i, s) in &self.by_neighbour[j as usize] {
                out[i as usize] += s;
            }
        }
    }
}

/// The items of a row as a set: sorted, distinct (the binary interactions).
fn item_set(row: &[u32]) -> Vec<u32> {
    let mut set = row.to_vec();
    set.sort_unstable();
    set.dedup();
    set
}

/// Item `i`'s `k` most similar items with their similarities, most similar first (ties by
/// item id): items that share at least one user with it, itself left out. `shared` is a
/// zeroed scratch row of one count per item, left zeroed.
fn nearest(
    i: usize,
    sets: &[Vec<u32>],
    users_of: &[Vec<u32>],
    shared: &mut [u32],
    k: usize,
    shrinkage: f64,
) -> Vec<(u32, f32)> {
    let mut touched = Vec::new();
    for &u in &users_of[i] {
        for &j in &sets[u as usize] {
            if shared[j as usize] == 0 {
                touched.push(j);
            }
            shared[j as usize] += 1;
        }
    }
    let norm = |item: usize| (users_of[item].len() as f64).sqrt();
    let mut row: Vec<(u32, f32)> = touched
        .iter()
        .filter(|&&j| j as usize != i)
        .map(|&j| {
            let together = shared[j as usize] as f64;
            let cosine = together / (norm(i) * norm(j as usize) + shrinkage);
            (j, cosine as f32)
        })
        .collect();
    for &j in &touched {
        shared[j as usize] = 0;
    }
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if row.len() > k {
        row.select_nth_unstable_by(k - 1, order);
        row.truncate(k);
    }
    row.sort_unstable_by(order);
    row
}

/// ItemKNN: every item's neighbours, fitted when built. It holds no trainable parameter.
#[derive(Module, Debug)]
pub struct ItemKnn {
    #[module(skip)]
    neighbours: Arc<Neighbours>,
    #[module(skip)]
    shrinkage: f64,
}

impl ItemKnn {
    /// Each item's neighbours.
    pub fn neighbours(&self) -> &Neighbours {
        &self.neighbours
    }
}

impl Recommender for ItemKnn {
    /// Nothing to learn: a zero with no gradient. A model fitted at init is trained for no
    /// epochs ([`ModelSettings::fitted_at_init`]); this answers a trainer that asks anyway.
    fn loss(&self, batch: &Batch, _step: usize) -> Tensor<1> {
        Tensor::zeros([1], &batch.user_rows().users.device())
    }

    /// Scores on the host, from each user's items in the query.
    fn score_all(&self, query: &Query) -> Tensor<2> {
        let rows = query.user_rows();
        let (batch, device) = (rows.batch(), rows.users.device());
        let ints = |t: &Tensor<1, Int>| {
            t.clone()
                .try_into_vec_as::<i64>()
                .expect("a query's ids read back")
        };
        let (items, item_rows) = (ints(&rows.items), ints(&rows.item_rows));
        let mut own: Vec<Vec<u32>> = vec![Vec::new(); batch];
        for (&i, &r) in items.iter().zip(&item_rows) {
            own[r as usize].push(i as u32);
        }
        let n = self.neighbours.num_items();
        let mut scores = vec![0.0f32; batch * n];
        scores
            .par_chunks_mut(n.max(1))
            .zip(&own)
            .for_each(|(out, row)| self.neighbours.scores(&item_set(row), out));
        Tensor::from_data(TensorData::new(scores, [batch, n]), &device)
    }

    /// The neighbour lists, as ember-infer loads them.
    fn export(&self) -> Export {
        let n = &self.neighbours;
        let items = n.num_items();
        let spec = ItemKnnSpec {
            neighbours: n.width,
            shrinkage: self.shrinkage,
        };
        Export {
            spec: ModelSpec::ItemKnn(spec),
            tensors: vec![
                (
                    "neighbours.similarity".into(),
                    vec![items, n.width],
                    n.similarity.clone(),
                ),
                (
                    "neighbours.item".into(),
                    vec![items * n.width],
                    n.items.iter().map(|&j| j as f32).collect(),
                ),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserRows;

    /// Four users over five items, and each item's users: `U_0 = {0, 1}`, `U_1 = {0, 1, 2}`,
    /// `U_2 = {0, 3}`, `U_3 = {2, 3}`, `U_4 = {3}`.
    fn toy() -> Vec<Vec<u32>> {
        vec![vec![2, 0, 1], vec![1, 0], vec![3, 1], vec![4, 2, 3, 2]]
    }

    /// The cosines by hand: `|U_i ∩ U_j| / (√|U_i| √|U_j| + λ)`.
    fn cosine(together: f64, users_i: f64, users_j: f64, shrinkage: f64) -> f32 {
        (together / (users_i.sqrt() * users_j.sqrt() + shrinkage)) as f32
    }

    fn rows(n: &Neighbours, width: usize) -> Vec<Vec<(u32, f32)>> {
        (0..n.num_items())
            .map(|i| {
                let range = i * width..(i + 1) * width;
                n.items[range.clone()]
                    .iter()
                    .copied()
                    .zip(n.similarity[range].iter().copied())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn each_item_keeps_its_k_highest_cosines_ties_by_id() {
        let n = Neighbours::fit(&toy(), 5, 2, 0.0);
        let c = |t, a, b| cosine(t, a, b, 0.0);
        let expected = vec![
            vec![(1, c(2.0, 2.0, 3.0)), (2, c(1.0, 2.0, 2.0))],
            // 2 and 3 tie at 1/√6: the lower id stays.
            vec![(0, c(2.0, 3.0, 2.0)), (2, c(1.0, 3.0, 2.0))],
            // 0 and 3 tie at 1/2 behind 4's 1/√2.
            vec![(4, c(1.0, 2.0, 1.0)), (0, c(1.0, 2.0, 2.0))],
            vec![(4, c(1.0, 2.0, 1.0)), (2, c(1.0, 2.0, 2.0))],
            vec![(2, c(1.0, 1.0, 2.0)), (3, c(1.0, 1.0, 2.0))],
        ];
        assert_eq!(rows(&n, 2), expected);
        assert!((expected[0][0].1 - 0.816_496_6).abs() < 1e-6);
    }

    #[test]
    fn shrinkage_lowers_every_similarity_and_short_rows_are_padded_with_the_item() {
        let n = Neighbours::fit(&toy(), 5, 3, 1.0);
        let got = rows(&n, 3);
        assert_eq!(got[0][0], (1, cosine(2.0, 2.0, 3.0, 1.0)));
        assert!((got[0][0].1 - 0.579_795_9).abs() < 1e-6);
        // Item 0 shares users with 1 and 2 only: its third slot is itself at 0.
        assert_eq!(got[0][2], (0, 0.0));
        assert_eq!(got[4][2], (4, 0.0));
    }

    /// The users' rows as the batches give them (any order; repeats are one interaction).
    fn query(lists: &[Vec<u32>], items: usize, device: &Device) -> Query {
        let ids = |v: Vec<i32>| {
            let n = v.len();
            Tensor::<1, Int>::from_data(TensorData::new(v, [n]), device)
        };
        let (mut flat, mut rows) = (Vec::new(), Vec::new());
        for (r, list) in lists.iter().enumerate() {
            flat.extend(list.iter().map(|&i| i as i32));
            rows.extend(list.iter().map(|_| r as i32));
        }
        Query::UserRows(UserRows {
            users: ids((0..lists.len() as i32).collect()),
            items: ids(flat),
            item_rows: ids(rows),
            num_items: items,
            values: None,
        })
    }

    #[test]
    fn a_user_scores_an_item_by_its_neighbours_among_the_users_items() {
        let train = toy();
        let device = Device::flex();
        let config = ItemKnnConfig {
            neighbours: 2,
            shrinkage: 0.0,
        };
        let model = config.init(&ModelInit::new(5, &train), &device);
        // User 0 owns {0, 1, 2}; a new user owns {3} alone.
        let scores: Vec<f32> = model
            .score_all(&query(&[train[0].clone(), vec![3, 3]], 5, &device))
            .try_into_vec_as()
            .unwrap();
        let c = |t, a, b| cosine(t, a, b, 0.0);
        let user0 = [
            c(2.0, 2.0, 3.0) + c(1.0, 2.0, 2.0), // N(0) = {1, 2}
            c(2.0, 3.0, 2.0) + c(1.0, 3.0, 2.0), // N(1) = {0, 2}
            c(1.0, 2.0, 2.0),                    // N(2) = {4, 0}
            c(1.0, 2.0, 2.0),                    // N(3) = {4, 2}
            c(1.0, 1.0, 2.0),                    // N(4) = {2, 3}
        ];
        let new_user = [0.0, 0.0, 0.0, 0.0, c(1.0, 1.0, 2.0)];
        let expected: Vec<f32> = user0.iter().chain(&new_user).copied().collect();
        assert_eq!(scores, expected);
        assert!((scores[0] - 1.316_496_6).abs() < 1e-6);
    }

    #[test]
    fn it_holds_no_trainable_parameter_and_exports_its_lists() {
        let train = toy();
        let config = ItemKnnConfig {
            neighbours: 3,
            shrinkage: 0.5,
        };
        let model = config.init(&ModelInit::new(5, &train), &Device::flex());
        assert_eq!(model.num_params(), 0);
        assert_eq!(config.parameter_count(4, 5), 0);
        assert_eq!(config.held_values(4, 5), 5 * 3 * 4);
        assert!(config.fitted_at_init() && config.built_from_train());
        let export = model.export();
        assert_eq!(
            export.spec,
            ModelSpec::ItemKnn(ItemKnnSpec {
                neighbours: 3,
                shrinkage: 0.5
            })
        );
        let (name, shape, ids) = &export.tensors[1];
        assert_eq!(
            (name.as_str(), shape.as_slice()),
            ("neighbours.item", &[15][..])
        );
        // Item 4's neighbours: 2 and 3 (tied, by id), then itself.
        assert_eq!(&ids[12..], &[2.0, 3.0, 4.0]);
        let (name, shape, similarity) = &export.tensors[0];
        assert_eq!(
            (name.as_str(), shape.as_slice()),
            ("neighbours.similarity", &[5, 3][..])
        );
        assert_eq!(similarity[14], 0.0);
        assert_eq!(similarity[12], cosine(1.0, 1.0, 2.0, 0.5));
    }
}
