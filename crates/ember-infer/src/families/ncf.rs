//! The neural collaborative filtering family (He et al., "Neural Collaborative Filtering",
//! WWW 2017): MF, GMF, MLP and NeuMF, scoring the users they were trained on by id.
//!
//! - MF: `ŷ = p_u · q_i`; GMF (eq. 9): `ŷ = hᵀ (p_u ⊙ q_i) + b`. Both score a user against the
//!   whole item table with the vectorised kernel ([`Factors`], which LightGCN shares), and
//!   score a customer they were not trained on by fold-in ([`crate::fold_in`]).
//! - MLP (eq. 10): `ŷ = hᵀ φ_L(… φ_1([p_u ‖ q_i])) + b` with ReLU layers.
//! - NeuMF (eq. 11–12): `ŷ = hᵀ [p^G_u ⊙ q^G_i ‖ φ^M(p^M_u ‖ q^M_i)] + b`.
//!
//! Explanations: the cosine similarity of the recommended item's vector with each of the
//! user's known items' (`cos(q_i, q_j)`; MLP: its item table; NeuMF: its GMF item table,
//! `q^G`), the item–item view of an embedding model. User vectors: `p_u` (NeuMF: `p^G_u ‖
//! p^M_u`).

use std::sync::{Arc, OnceLock};

use ember_spec::{FactorsSpec, MlpSpec, NeuMfSpec};

use super::{Family, Subject, Unexplained, cosine_because};
use crate::InferError;
use crate::fold_in::{UserSide, fold_in_by_steps};
use crate::kernels::dot;
use crate::nn::{Dense, Matrix, Rows, relu};
use crate::source::TensorSource;

/// Items scored per block of the item table: small enough to stay in cache while every query
/// of a batch reads them (the table itself is streamed from memory once per batch).
const ROWS_PER_BLOCK: usize = 1024;

/// The output layer `hᵀ x + b` over one vector (`output.weight` `[inputs, 1]`, `output.bias`).
#[derive(Debug, Clone)]
struct Output {
    h: Vec<f32>,
    b: f32,
}

impl Output {
    fn load(src: &TensorSource<'_>, inputs: usize) -> Result<Self, InferError> {
        let layer = Dense::load(&src.pp("output"), inputs, 1)?;
        Ok(Self {
            h: layer.weight.data,
            b: layer.bias[0],
        })
    }
}

/// A user row against an item table by dot products: MF and LightGCN (`p_u · q_i`), GMF
/// (`(p_u ⊙ h) · q_i + b`).
#[derive(Debug, Clone)]
pub(crate) struct Factors {
    users: Matrix,
    items: Rows,
    num_items: usize,
    factors: usize,
    /// GMF's output layer.
    output: Option<Output>,
    /// `QᵀQ` of the item table, computed on the first fold-in ([`crate::fold_in`]).
    gram: Arc<OnceLock<Vec<f64>>>,
}

impl Factors {
    /// `users.weight` `[users, factors]` and `items.weight` `[items, factors]` (kept int8 in
    /// an int8 model).
    pub(crate) fn load_tables(src: &TensorSource<'_>, factors: usize) -> Result<Self, InferError> {
        Ok(Self {
            users: Matrix::load(src, "users.weight", src.users(), factors)?,
            items: Rows::load(src, "items.weight", src.items(), factors)?,
            num_items: src.items(),
            factors,
            output: None,
            gram: Arc::default(),
        })
    }

    /// The scoring vector of a customer given by `items`, folded in against the item table:
    /// for MF and LightGCN their `p_u`, for GMF `p_u ⊙ h` (fitted directly, as the score is
    /// linear in it).
    fn folded_in(&self, items: &[u32]) -> Vec<f32> {
        let gram = self.gram.get_or_init(|| {
            crate::fold_in::gram(self.num_items, self.factors, |i| self.items.row_vec(i))
        });
        let own: Vec<Vec<f32>> = items
            .iter()
            .map(|&i| self.items.row_vec(i as usize))
            .collect();
        // Only an all-zero item table is singular; its scores are all equal anyway.
        crate::fold_in::fold_in(gram, self.factors, &own).unwrap_or(vec![0.0; self.factors])
    }

    /// Every item's score for the user-side vector `query`, in blocks of the item table.
    fn scores_of(&self, queries: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let n = self.num_items;
        let mut out: Vec<Vec<f32>> = queries.iter().map(|_| vec![0.0; n]).collect();
        for start in (0..n).step_by(ROWS_PER_BLOCK) {
            let end = (start + ROWS_PER_BLOCK).min(n);
            for (query, scores) in queries.iter().zip(out.iter_mut()) {
                self.items
                    .dot_block(query, start, end, &mut scores[start..end]);
            }
        }
        if let Some(output) = &self.output {
            out.iter_mut().flatten().for_each(|s| *s += output.b);
        }
        out
    }

    /// The user side of the score, computed once per user: `p_u`, or `p_u ⊙ h` for GMF.
    fn query(&self, u: usize) -> Vec<f32> {
        match &self.output {
            None => self.users.row(u).to_vec(),
            Some(out) => self
                .users
                .row(u)
                .iter()
                .zip(&out.h)
                .map(|(p, w)| p * w)
                .collect(),
        }
    }
}

/// MF.
pub(super) fn load_mf(spec: &FactorsSpec, src: &TensorSource<'_>) -> Result<Factors, InferError> {
    Factors::load_tables(src, spec.factors)
}

/// GMF: MF's tables and the output layer.
pub(super) fn load_gmf(spec: &FactorsSpec, src: &TensorSource<'_>) -> Result<Factors, InferError> {
    let mut factors = Factors::load_tables(src, spec.factors)?;
    factors.output = Some(Output::load(src, spec.factors)?);
    Ok(factors)
}

impl Family for Factors {
    /// One user's row: [`Family::user_scores`] of a batch of one.
    fn user_row(&self, user: usize, out: &mut Vec<f32>) {
        *out = self.user_scores(&[user]).swap_remove(0);
    }

    fn user_scores(&self, users: &[usize]) -> Vec<Vec<f32>> {
        let queries: Vec<Vec<f32>> = users.iter().map(|&u| self.query(u)).collect();
        self.scores_of(&queries)
    }

    /// A customer the model was not trained on, folded in from their items.
    fn history_row(&self, items: &[u32], out: &mut Vec<f32>) -> Result<(), super::ById> {
        *out = self.scores_of(&[self.folded_in(items)]).swap_remove(0);
        Ok(())
    }

    fn pair_scores(&self, pairs: &[(usize, usize)]) -> Vec<f32> {
        pairs
            .iter()
            .map(|&(u, i)| {
                let score = self.items.dot(&self.query(u), i);
                match &self.output {
                    Some(output) => score + output.b,
                    None => score,
                }
            })
            .collect()
    }

    fn explain(
        &self,
        subject: Subject<'_>,
        targets: &[usize],
    ) -> Result<Vec<Vec<(u32, f32)>>, Unexplained> {
        let known = known_items(subject)?;
        Ok(cosine_because(targets, known, |i| self.items.row_vec(i)))
    }

    fn user_vector(&self, user: usize) -> Result<Vec<f32>, InferError> {
        Ok(self.users.row(user).to_vec())
    }
}

/// The mean of a table's rows: the typical trained user a fold-in by steps starts from.
fn mean_row(table: &Matrix) -> Vec<f32> {
    let rows = table.data.len() / table.cols.max(1);
    let mut mean = vec![0.0f32; table.cols];
    for r in 0..rows {
        for (m, x) in mean.iter_mut().zip(table.row(r)) {
            *m += x / rows as f32;
        }
    }
    mean
}

/// The known items of a user of an id-based model, which explanations compare with: a
/// folded-in customer's are their history's.
fn known_items(subject: Subject<'_>) -> Result<&[u32], Unexplained> {
    match subject {
        Subject::User {
            known: Some(known), ..
        } => Ok(known),
        Subject::User { known: None, .. } => Err(Unexplained::NoKnownItems),
        Subject::History(items) => Ok(items),
    }
}

/// The MLP part: the first layer is split into its user and item halves, whose products are
/// computed once per user and once per item at load time.
#[derive(Debug, Clone)]
struct Tower {
    user_proj: Matrix,
    item_proj: Matrix,
    first_bias: Vec<f32>,
    rest: Vec<Dense>,
    /// The user half of the first layer (`half × width`), for fold-in.
    user_weight: Matrix,
}

impl Tower {
    /// `tower.layers.k` for each pair of consecutive `layers` sizes, over the embeddings
    /// `users` and `items` (`layers[0] / 2` wide each).
    fn load(
        src: &TensorSource<'_>,
        layers: &[usize],
        users: &Matrix,
        items: &Matrix,
    ) -> Result<Self, InferError> {
        let src = src.pp("tower.layers");
        let mut dense = layers
            .windows(2)
            .enumerate()
            .map(|(k, w)| Dense::load(&src.pp(k), w[0], w[1]))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter();
        let first = dense.next().expect("the spec has at least two layer sizes");
        let half = users.cols;
        let width = first.weight.cols;
        let project = |emb: &Matrix, offset: usize| {
            let rows = emb.data.len() / emb.cols.max(1);
            let mut data = vec![0.0f32; rows * width];
            for r in 0..rows {
                let out = &mut data[r * width..(r + 1) * width];
                for (i, &x) in emb.row(r).iter().enumerate() {
                    for (o, w) in out.iter_mut().zip(first.weight.row(offset + i)) {
                        *o += x * w;
                    }
                }
            }
            Matrix { cols: width, data }
        };
        Ok(Tower {
            user_proj: project(users, 0),
            item_proj: project(items, half),
            first_bias: first.bias.clone(),
            rest: dense.collect(),
            user_weight: Matrix {
                cols: width,
                data: first.weight.rows(0, half).to_vec(),
            },
        })
    }

    /// The score part `tower(p, i) · out` of a folded-in user-side vector `p` (the MLP
    /// embedding), adding its gradient in `p` to `grad`: the layers' activations kept on the
    /// way up, the gradient taken back down through the ReLUs.
    fn score_and_grad(&self, p: &[f32], item: usize, out: &[f32], grad: &mut [f32]) -> f32 {
        let mut first = self.project_user(p);
        for ((o, i), b) in first
            .iter_mut()
            .zip(self.item_proj.row(item))
            .zip(&self.first_bias)
        {
            *o = (*o + i + b).max(0.0);
        }
        let mut acts = vec![first];
        for layer in &self.rest {
            let mut next = Vec::new();
            layer.apply(acts.last().expect("the first layer"), &mut next);
            relu(&mut next);
            acts.push(next);
        }
        let score = dot(acts.last().expect("a layer"), out);
        // d score / d last activations = out; back through each layer's ReLU and weights
        // (acts[k + 1] = relu(acts[k] W_k + b_k)).
        let through_relu = |g: &[f32], act: &[f32]| -> Vec<f32> {
            g.iter()
                .zip(act)
                .map(|(g, a)| if *a > 0.0 { *g } else { 0.0 })
                .collect()
        };
        let mut g = out.to_vec();
        for k in (0..self.rest.len()).rev() {
            let pre = through_relu(&g, &acts[k + 1]);
            g = (0..acts[k].len())
                .map(|i| dot(self.rest[k].weight.row(i), &pre))
                .collect();
        }
        let pre = through_relu(&g, &acts[0]);
        for (r, gr) in grad.iter_mut().enumerate().take(p.len()) {
            *gr += dot(self.user_weight.row(r), &pre);
        }
        score
    }

    /// The last hidden layer for (user, item), written into `h`.
    fn hidden(&self, user: usize, item: usize, h: &mut Vec<f32>, scratch: &mut Vec<f32>) {
        self.hidden_from(self.user_proj.row(user), item, h, scratch)
    }

    /// `p W_u`: the first layer's user part for the user-side vector `p`.
    fn project_user(&self, p: &[f32]) -> Vec<f32> {
        let mut z = vec![0.0f32; self.user_weight.cols];
        for (r, &x) in p.iter().enumerate() {
            for (o, w) in z.iter_mut().zip(self.user_weight.row(r)) {
                *o += x * w;
            }
        }
        z
    }

    /// The last hidden layer for a user whose first-layer part is `user_proj` and `item`.
    fn hidden_from(
        &self,
        user_proj: &[f32],
        item: usize,
        h: &mut Vec<f32>,
        scratch: &mut Vec<f32>,
    ) {
        h.clear();
        h.extend(
            user_proj
                .iter()
                .zip(self.item_proj.row(item))
                .zip(&self.first_bias)
                .map(|((u, i), b)| (u + i + b).max(0.0)),
        );
        for layer in &self.rest {
            layer.apply(h, scratch);
            relu(scratch);
            std::mem::swap(h, scratch);
        }
    }
}

/// Scores of every item for each user, one pair at a time: the models without a factorised
/// form (MLP, NeuMF). `score(query, u, i, h, scratch)` scores a pair given the user's `query`.
fn pairwise_user_scores<Q>(
    users: &[usize],
    items: usize,
    query: impl Fn(usize) -> Q,
    score: impl Fn(&Q, usize, usize, &mut Vec<f32>, &mut Vec<f32>) -> f32,
) -> Vec<Vec<f32>> {
    let (mut h, mut scratch) = (Vec::new(), Vec::new());
    users
        .iter()
        .map(|&u| {
            let q = query(u);
            (0..items)
                .map(|i| score(&q, u, i, &mut h, &mut scratch))
                .collect()
        })
        .collect()
}

/// MLP over `[p_u ‖ q_i]`.
#[derive(Debug, Clone)]
pub(super) struct Mlp {
    users: Matrix,
    items: Matrix,
    tower: Tower,
    output: Output,
    num_items: usize,
}

impl Mlp {
    /// `users.weight`, `items.weight` (`layers[0] / 2` wide), the tower, `output`.
    pub(super) fn load(spec: &MlpSpec, src: &TensorSource<'_>) -> Result<Self, InferError> {
        let layers = &spec.layers;
        let half = layers[0] / 2;
        let users = Matrix::load(src, "users.weight", src.users(), half)?;
        let items = Matrix::load(src, "items.weight", src.items(), half)?;
        Ok(Self {
            tower: Tower::load(src, layers, &users, &items)?,
            output: Output::load(src, *layers.last().expect("validated"))?,
            num_items: src.items(),
            users,
            items,
        })
    }

    fn score(&self, u: usize, i: usize, h: &mut Vec<f32>, scratch: &mut Vec<f32>) -> f32 {
        self.tower.hidden(u, i, h, scratch);
        dot(h, &self.output.h) + self.output.b
    }
}

impl UserSide for Mlp {
    fn start(&self) -> Vec<f32> {
        mean_row(&self.users)
    }

    fn score_and_grad(&self, v: &[f32], item: usize, grad: &mut [f32]) -> f32 {
        self.tower.score_and_grad(v, item, &self.output.h, grad) + self.output.b
    }
}

impl Family for Mlp {
    /// One user's row: [`Family::user_scores`] of a batch of one.
    fn user_row(&self, user: usize, out: &mut Vec<f32>) {
        *out = self.user_scores(&[user]).swap_remove(0);
    }

    /// A customer the model was not trained on, folded in by gradient steps.
    fn history_row(&self, items: &[u32], out: &mut Vec<f32>) -> Result<(), super::ById> {
        let user_proj = self
            .tower
            .project_user(&fold_in_by_steps(self, items, self.num_items));
        let (mut h, mut scratch) = (Vec::new(), Vec::new());
        *out = (0..self.num_items)
            .map(|i| {
                self.tower.hidden_from(&user_proj, i, &mut h, &mut scratch);
                dot(&h, &self.output.h) + self.output.b
            })
            .collect();
        Ok(())
    }

    fn user_scores(&self, users: &[usize]) -> Vec<Vec<f32>> {
        pairwise_user_scores(
            users,
            self.num_items,
            |_| (),
            |_, u, i, h, s| self.score(u, i, h, s),
        )
    }

    fn pair_scores(&self, pairs: &[(usize, usize)]) -> Vec<f32> {
        let (mut h, mut scratch) = (Vec::new(), Vec::new());
        pairs
            .iter()
            .map(|&(u, i)| self.score(u, i, &mut h, &mut scratch))
            .collect()
    }

    fn explain(
        &self,
        subject: Subject<'_>,
        targets: &[usize],
    ) -> Result<Vec<Vec<(u32, f32)>>, Unexplained> {
        let known = known_items(subject)?;
        Ok(cosine_because(targets, known, |i| {
            self.items.row(i).to_vec()
        }))
    }

    fn user_vector(&self, user: usize) -> Result<Vec<f32>, InferError> {
        Ok(self.users.row(user).to_vec())
    }
}

/// NeuMF: a GMF part and an MLP part, fused in the output layer.
#[derive(Debug, Clone)]
pub(super) struct NeuMf {
    users: Matrix,
    items: Matrix,
    mlp_users: Matrix,
    tower: Tower,
    /// Over `[GMF ‖ MLP]`.
    output: Output,
    num_items: usize,
}

impl NeuMf {
    /// `gmf_users`, `gmf_items`, `mlp_users`, `mlp_items`, the tower, `output`.
    pub(super) fn load(spec: &NeuMfSpec, src: &TensorSource<'_>) -> Result<Self, InferError> {
        let (factors, layers) = (spec.factors, &spec.layers);
        let half = layers[0] / 2;
        let users = Matrix::load(src, "gmf_users.weight", src.users(), factors)?;
        let items = Matrix::load(src, "gmf_items.weight", src.items(), factors)?;
        let mlp_users = Matrix::load(src, "mlp_users.weight", src.users(), half)?;
        let mlp_items = Matrix::load(src, "mlp_items.weight", src.items(), half)?;
        let tower = Tower::load(src, layers, &mlp_users, &mlp_items)?;
        // The spec's validation checked that this sum fits.
        let fused = factors + layers.last().expect("validated");
        Ok(Self {
            users,
            items,
            mlp_users,
            tower,
            output: Output::load(src, fused)?,
            num_items: src.items(),
        })
    }

    /// The GMF part's user side, `p^G_u ⊙ h_GMF`, computed once per user.
    fn query(&self, u: usize) -> Vec<f32> {
        self.users
            .row(u)
            .iter()
            .zip(&self.output.h)
            .map(|(p, w)| p * w)
            .collect()
    }

    fn score(
        &self,
        query: &[f32],
        u: usize,
        i: usize,
        h: &mut Vec<f32>,
        scratch: &mut Vec<f32>,
    ) -> f32 {
        self.tower.hidden(u, i, h, scratch);
        dot(query, self.items.row(i)) + dot(h, &self.output.h[self.users.cols..]) + self.output.b
    }
}

/// A NeuMF user-side vector is `p^G ‖ p^M`.
impl UserSide for NeuMf {
    fn start(&self) -> Vec<f32> {
        let mut v = mean_row(&self.users);
        v.extend(mean_row(&self.mlp_users));
        v
    }

    fn score_and_grad(&self, v: &[f32], item: usize, grad: &mut [f32]) -> f32 {
        let factors = self.users.cols;
        let (gmf_h, mlp_h) = self.output.h.split_at(factors);
        let q = self.items.row(item);
        let mut score = self.output.b;
        for k in 0..factors {
            score += v[k] * gmf_h[k] * q[k];
            grad[k] += gmf_h[k] * q[k];
        }
        score
            + self
                .tower
                .score_and_grad(&v[factors..], item, mlp_h, &mut grad[factors..])
    }
}

impl Family for NeuMf {
    /// One user's row: [`Family::user_scores`] of a batch of one.
    fn user_row(&self, user: usize, out: &mut Vec<f32>) {
        *out = self.user_scores(&[user]).swap_remove(0);
    }

    /// A customer the model was not trained on, folded in by gradient steps on both parts.
    fn history_row(&self, items: &[u32], out: &mut Vec<f32>) -> Result<(), super::ById> {
        let v = fold_in_by_steps(self, items, self.num_items);
        let factors = self.users.cols;
        let query: Vec<f32> = v[..factors]
            .iter()
            .zip(&self.output.h)
            .map(|(p, w)| p * w)
            .collect();
        let user_proj = self.tower.project_user(&v[factors..]);
        let (mut h, mut scratch) = (Vec::new(), Vec::new());
        *out = (0..self.num_items)
            .map(|i| {
                self.tower.hidden_from(&user_proj, i, &mut h, &mut scratch);
                dot(&query, self.items.row(i)) + dot(&h, &self.output.h[factors..]) + self.output.b
            })
            .collect();
        Ok(())
    }

    fn user_scores(&self, users: &[usize]) -> Vec<Vec<f32>> {
        pairwise_user_scores(
            users,
            self.num_items,
            |u| self.query(u),
            |q, u, i, h, s| self.score(q, u, i, h, s),
        )
    }

    fn pair_scores(&self, pairs: &[(usize, usize)]) -> Vec<f32> {
        let (mut h, mut scratch) = (Vec::new(), Vec::new());
        pairs
            .iter()
            .map(|&(u, i)| self.score(&self.query(u), u, i, &mut h, &mut scratch))
            .collect()
    }

    /// By the GMF item table, whose cosine is the similarity the GMF part scores with.
    fn explain(
        &self,
        subject: Subject<'_>,
        targets: &[usize],
    ) -> Result<Vec<Vec<(u32, f32)>>, Unexplained> {
        let known = known_items(subject)?;
        Ok(cosine_because(targets, known, |i| {
            self.items.row(i).to_vec()
        }))
    }

    /// `p^G_u ‖ p^M_u`.
    fn user_vector(&self, user: usize) -> Result<Vec<f32>, InferError> {
        let mut v = self.users.row(user).to_vec();
        v.extend_from_slice(self.mlp_users.row(user));
        Ok(v)
    }
}
