//! GRU4Rec (Hidasi et al., "Session-based Recommendations with Recurrent Neural Networks",
//! ICLR 2016), computed as the training side does at evaluation (no dropout).
//!
//! A stack of GRU layers reads the real tokens of the user's latest `max_len` items
//! ([`ember_spec::tokens`]) from a zero state (the training side's state stays zero through the
//! left padding, so padding changes nothing); the last layer's last state, projected onto the
//! item embeddings (`p = W s + b`), scores item `i` as `p · items[token(i)]`. A user with no
//! items has a zero state. Each layer follows PyTorch's `nn.GRU` (gates reset, update, new):
//!
//! `r = σ(x Wᵢᵣ + bᵢᵣ + s Wₕᵣ + bₕᵣ)`, `z = σ(x Wᵢ_z + bᵢ_z + s Wₕ_z + bₕ_z)`,
//! `n = tanh(x Wᵢₙ + bᵢₙ + r ⊙ (s Wₕₙ + bₕₙ))`, `s' = (1 − z) ⊙ n + z ⊙ s`.
//!
//! The export stores each user's sequence (time order, repeats kept), so the users of the
//! training data are scored from it.
//!
//! Explanations are by occlusion: an item's weight is the drop in the recommended item's logit
//! when every occurrence of it is removed from the history (the window then reaches one item
//! further back), for each distinct item of the window (at most [`super::MAX_OCCLUDED`], the
//! latest). User vectors: the last layer's last state.

use ember_spec::{Gru4RecSpec, tokens};

use super::{ById, Family, Subject, Unexplained, latest_candidates, occlusion_because};
use crate::kernels::{dot, dot_rows_f32};
use crate::nn::{Dense, Matrix, sigmoid};
use crate::source::{SparseRows, TensorSource};
use crate::{InferError, ScoreScale};

/// One GRU layer: `input` `[in, 3h]` and `recurrent` `[h, 3h]`, columns in gate order
/// reset | update | new.
#[derive(Debug, Clone)]
struct GruLayer {
    input: Dense,
    recurrent: Dense,
    hidden: usize,
}

impl GruLayer {
    fn load(src: &TensorSource<'_>, inputs: usize, hidden: usize) -> Result<Self, InferError> {
        // The spec's validation checked that 3 × hidden fits.
        Ok(Self {
            input: Dense::load(&src.pp("input"), inputs, 3 * hidden)?,
            recurrent: Dense::load(&src.pp("recurrent"), hidden, 3 * hidden)?,
            hidden,
        })
    }

    /// The state after each of `xs`, from a zero state.
    ///
    /// # Shapes
    /// - xs: `[len, in]`
    /// - output: `[len, hidden]`
    fn forward(&self, xs: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let hidden = self.hidden;
        let mut state = vec![0.0f32; hidden];
        let (mut gx, mut gh) = (Vec::new(), Vec::new());
        let mut states = Vec::with_capacity(xs.len());
        for x in xs {
            self.input.apply(x, &mut gx);
            self.recurrent.apply(&state, &mut gh);
            for j in 0..hidden {
                let reset = sigmoid(gx[j] + gh[j]);
                let update = sigmoid(gx[hidden + j] + gh[hidden + j]);
                let new = (gx[2 * hidden + j] + reset * gh[2 * hidden + j]).tanh();
                // (1 − z) n + z s, as the training side computes it.
                state[j] = new + update * (state[j] - new);
            }
            states.push(state.clone());
        }
        states
    }
}

/// GRU4Rec with every user's stored sequence.
#[derive(Debug, Clone)]
pub(super) struct Gru4Rec {
    /// One row per token ([`tokens`]): padding, then the items.
    items: Matrix,
    layers: Vec<GruLayer>,
    /// `[hidden, embedding]`: the last state onto the item embeddings.
    projection: Dense,
    hidden: usize,
    num_items: usize,
    max_len: usize,
    /// Each user's items, in time order.
    history: SparseRows,
}

impl Gru4Rec {
    /// `items.weight` `[items + 1, embedding]`, `gru.k.{input,recurrent}`, `projection`.
    pub(super) fn load(spec: &Gru4RecSpec, src: &TensorSource<'_>) -> Result<Self, InferError> {
        let (embedding, hidden, num_items) = (spec.embedding, spec.hidden, src.items());
        let items = Matrix::load(
            src,
            "items.weight",
            tokens::table_rows(num_items, false),
            embedding,
        )?;
        let layers = (0..spec.layers)
            .map(|k| {
                let inputs = if k == 0 { embedding } else { hidden };
                GruLayer::load(&src.pp("gru").pp(k), inputs, hidden)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            items,
            layers,
            projection: Dense::load(&src.pp("projection"), hidden, embedding)?,
            hidden,
            num_items,
            max_len: spec.max_len,
            history: src.user_items()?,
        })
    }

    /// The items of `history` the model reads: the latest `max_len`.
    fn window<'h>(&self, history: &'h [u32]) -> &'h [u32] {
        &history[history.len().saturating_sub(self.max_len)..]
    }

    /// The last layer's last state for a user whose items, in time order, are `history`.
    fn state(&self, history: &[u32]) -> Vec<f32> {
        // The window's real tokens: its padding never enters, and `max_len` is not bounded by
        // any tensor's size, so the padded window is not built.
        let mut xs: Vec<Vec<f32>> = self
            .window(history)
            .iter()
            .map(|&item| self.items.row(tokens::item(item) as usize).to_vec())
            .collect();
        for layer in &self.layers {
            xs = layer.forward(&xs);
        }
        xs.pop().unwrap_or_else(|| vec![0.0; self.hidden])
    }

    /// The last state projected onto the item embeddings.
    fn query(&self, history: &[u32]) -> Vec<f32> {
        let mut p = Vec::new();
        self.projection.apply(&self.state(history), &mut p);
        p
    }

    /// Logits of every item for a user whose items, in time order, are `history`.
    fn scores(&self, history: &[u32], out: &mut Vec<f32>) {
        let p = self.query(history);
        out.clear();
        out.resize(self.num_items, 0.0);
        let first = tokens::item(0) as usize;
        dot_rows_f32(&p, self.items.rows(first, first + self.num_items), out);
    }
}

impl Family for Gru4Rec {
    fn user_row(&self, u: usize, out: &mut Vec<f32>) {
        self.scores(self.history.row(u), out)
    }

    /// The items in the order given, the latest last.
    fn history_row(&self, items: &[u32], out: &mut Vec<f32>) -> Result<(), ById> {
        self.scores(items, out);
        Ok(())
    }

    /// Occlusion of the window's distinct items (the latest [`super::MAX_OCCLUDED`]): each is
    /// removed from the history, every occurrence, and the window taken again (an older item
    /// may enter it), as for a user who never had it.
    fn explain(
        &self,
        subject: Subject<'_>,
        targets: &[usize],
    ) -> Result<Vec<Vec<(u32, f32)>>, Unexplained> {
        let history = match subject {
            Subject::User { user, .. } => self.history.row(user),
            Subject::History(items) => items,
        };
        let candidates = latest_candidates(self.window(history));
        Ok(occlusion_because(history, &candidates, targets, |items| {
            let p = self.query(items);
            targets
                .iter()
                .map(|&t| dot(&p, self.items.row(tokens::item(t as u32) as usize)))
                .collect()
        }))
    }

    fn user_vector(&self, user: usize) -> Result<Vec<f32>, InferError> {
        Ok(self.state(self.history.row(user)))
    }

    fn score_scale(&self) -> ScoreScale {
        ScoreScale::NextItemLogits
    }
}

#[cfg(test)]
mod tests {
    use crate::writer::{load_in_memory, tensor, test_manifest};
    use crate::{
        ExportedModel, Gru4RecSpec, Key, Known, ModelData, ModelSpec, Options, Precision, Scored,
        TensorF32,
    };

    /// The top `k` for a history, its own items included (as a stored user's, whose export
    /// here has no known items).
    fn top_of_history(model: &ExportedModel, history: &[i64], k: usize) -> Vec<Scored> {
        let options = Options {
            known: Known::Include,
            ..Options::default()
        };
        let history: Vec<Key> = history.iter().map(|&i| Key::Integer(i)).collect();
        model
            .recommend_history_for(&history, k, &options)
            .unwrap()
            .into_iter()
            .map(|r| Scored {
                id: r.id,
                score: r.score,
            })
            .collect()
    }

    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// Embedding 2, state 1, items 0 = `[1, 0]` and 1 = `[0, 2]` (token rows 1 and 2).
    /// Layer 0 gates (reset | update | new): `Wᵢ = [[0.5, −0.25, 1], [0.1, 0.2, −0.5]]`,
    /// `bᵢ = [0, 0.1, 0.2]`, `Wₕ = [[0.3, −0.4, 0.6]]`, `bₕ = [0.05, 0, −0.1]`; projection
    /// `[[1.5, −0.5]]` with bias `[0.25, 0.1]`. With `layers = 2`, layer 1 is
    /// `Wᵢ = [[0.7, 0.2, −0.3]]`, `bᵢ = [0, 0, 0.1]`, `Wₕ = [[−0.2, 0.5, 0.4]]`, `bₕ = 0`.
    fn tiny(layers: usize, max_len: usize, sequences: &[Vec<u32>]) -> ExportedModel {
        let mut tensors: Vec<TensorF32> = vec![
            tensor("items.weight", &[3, 2], &[0.0, 0.0, 1.0, 0.0, 0.0, 2.0]),
            tensor(
                "gru.0.input.weight",
                &[2, 3],
                &[0.5, -0.25, 1.0, 0.1, 0.2, -0.5],
            ),
            tensor("gru.0.input.bias", &[3], &[0.0, 0.1, 0.2]),
            tensor("gru.0.recurrent.weight", &[1, 3], &[0.3, -0.4, 0.6]),
            tensor("gru.0.recurrent.bias", &[3], &[0.05, 0.0, -0.1]),
            tensor("projection.weight", &[1, 2], &[1.5, -0.5]),
            tensor("projection.bias", &[2], &[0.25, 0.1]),
        ];
        if layers == 2 {
            tensors.extend([
                tensor("gru.1.input.weight", &[1, 3], &[0.7, 0.2, -0.3]),
                tensor("gru.1.input.bias", &[3], &[0.0, 0.0, 0.1]),
                tensor("gru.1.recurrent.weight", &[1, 3], &[-0.2, 0.5, 0.4]),
                tensor("gru.1.recurrent.bias", &[3], &[0.0, 0.0, 0.0]),
            ]);
        }
        let spec = ModelSpec::Gru4Rec(Gru4RecSpec {
            embedding: 2,
            hidden: 1,
            layers,
            max_len,
        });
        let manifest = test_manifest(spec, Precision::F32, sequences.len(), 2);
        load_in_memory(&manifest, &tensors, ModelData::Histories(sequences)).unwrap()
    }

    /// Item scores for the last state `s`: `p = 1.5 s + 0.25`, `−0.5 s + 0.1`; item 0 reads
    /// `p · [1, 0]`, item 1 `p · [0, 2]`.
    fn scores(s: f64) -> [f64; 2] {
        [1.5 * s + 0.25, 2.0 * (-0.5 * s + 0.1)]
    }

    fn assert_close(got: &[f32], want: [f64; 2]) {
        for (g, w) in got.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }

    /// Layer 0's state after item 0 from a zero state: `x = [1, 0]` gives the input gates
    /// `[0.5, −0.15, 1.2]`; the recurrent ones are the biases `[0.05, 0, −0.1]`.
    fn first_step() -> f64 {
        let r = sigmoid(0.5 + 0.05);
        let z = sigmoid(-0.15);
        let n = (1.2 + r * -0.1).tanh();
        (1.0 - z) * n
    }

    #[test]
    fn one_step_matches_the_hand_computed_gru() {
        let model = tiny(1, 3, &[vec![0]]);
        let s1 = first_step();
        assert_close(&model.item_scores_internal(0), scores(s1));
        let by_history = top_of_history(&model, &[100], 2);
        let by_user = model.recommend(&Key::Integer(10), 2, &[]).unwrap();
        assert_eq!(by_history, by_user);
        // No items: a zero state, so the projection's bias alone.
        let empty = top_of_history(&model, &[], 2);
        let mut want = scores(0.0);
        want.sort_by(|a, b| b.total_cmp(a));
        assert_close(&[empty[0].score, empty[1].score], want);
    }

    #[test]
    fn two_steps_match_the_hand_computed_gru_and_read_the_latest_items() {
        let s1 = first_step();
        // Item 1, `x = [0, 2]`: input gates `[0.2, 0.5, −0.8]`; recurrent ones
        // `s1 · [0.3, −0.4, 0.6] + [0.05, 0, −0.1]`.
        let r = sigmoid(0.2 + 0.3 * s1 + 0.05);
        let z = sigmoid(0.5 - 0.4 * s1);
        let n = (-0.8 + r * (0.6 * s1 - 0.1)).tanh();
        let s2 = (1.0 - z) * n + z * s1;
        let model = tiny(1, 2, &[vec![0, 1], vec![1, 0, 1]]);
        assert_close(&model.item_scores_internal(0), scores(s2));
        // A window of 2 reads the latest two items of user 11's three.
        assert_close(&model.item_scores_internal(1), scores(s2));
        let pairs = model.score_internal_pairs(&[(1, 1), (0, 0), (1, 0)]);
        assert_close(&[pairs[1], pairs[0]], scores(s2));
        // Order matters: item 1 then item 0 is another state.
        let reversed = top_of_history(&model, &[101, 100], 2);
        assert!(
            (reversed[0].score as f64 - scores(s2)[0]).abs() > 1e-3
                && (reversed[0].score as f64 - scores(s2)[1]).abs() > 1e-3,
            "{reversed:?}"
        );
    }

    #[test]
    fn a_second_layer_reads_the_first_layers_states() {
        let s1 = first_step();
        // Layer 1 from a zero state, `x = s1`.
        let r = sigmoid(0.7 * s1);
        let z = sigmoid(0.2 * s1);
        let n = (-0.3 * s1 + 0.1 + r * 0.0).tanh();
        let t1 = (1.0 - z) * n;
        let model = tiny(2, 3, &[vec![0]]);
        assert_close(&model.item_scores_internal(0), scores(t1));
    }
}
