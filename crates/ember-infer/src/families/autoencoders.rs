//! The autoencoders over a user's item row, computed as the training side does at evaluation
//! (no dropout; Mult-VAE's code is its mean):
//!
//! - Mult-DAE and Mult-VAE (Liang et al., "Variational Autoencoders for Collaborative
//!   Filtering", WWW 2018): the L2-normalised row through tanh layers and back to one logit per
//!   item.
//! - CDAE (Wu et al., "Collaborative Denoising Auto-Encoders for Top-N Recommender Systems",
//!   WSDM 2016): `z_u = σ(Wᵀ y_u + V_u + b)`, decoded to one logit per item.
//!
//! The export stores each user's training items as a set, so the users of the training data are
//! scored from their row; any other user can be scored from a history (CDAE gives such a user a
//! zero user vector `V_u`).
//!
//! Explanations are by occlusion: an item's weight is the drop in the recommended item's logit
//! when that item is removed from the user's input row (Mult-DAE and Mult-VAE renormalise the
//! smaller row, as they would for a user without it). Each removal is one encoder pass and the
//! recommended items' columns of the last decoder layer; a user with more than
//! [`super::MAX_OCCLUDED`] items has only that many removed: those whose encoder rows
//! `‖W₁[j]‖` are largest, which move the first layer most. User vectors are the encoder's
//! code: Mult-DAE `tanh` of the last encoder layer, Mult-VAE its mean, CDAE `z_u`.

use ember_spec::{AutoencoderSpec, CdaeSpec};

use super::{
    ById, Family, Subject, Unexplained, item_set, occlusion_because, occlusion_candidates,
};
use crate::nn::{Dense, Matrix, sigmoid, tanh};
use crate::source::{SparseRows, TensorSource};
use crate::{InferError, ScoreScale};

/// Which autoencoder, with what sets them apart.
#[derive(Debug, Clone)]
pub(super) enum Flavour {
    /// Mult-DAE: L2-normalised input, tanh layers, tanh on the code.
    Dae,
    /// Mult-VAE: as Mult-DAE, the code being the mean half of the encoder's output.
    Vae,
    /// CDAE: raw 0/1 input, `σ(…+ V_u)` code with the user's vector, one layer each way.
    Cdae { users: Matrix },
}

/// An autoencoder over item histories, with every user's training items.
#[derive(Debug, Clone)]
pub(super) struct Autoencoder {
    encoder: Vec<Dense>,
    decoder: Vec<Dense>,
    flavour: Flavour,
    /// Each user's training items, sorted and distinct.
    history: SparseRows,
}

impl Autoencoder {
    /// Mult-DAE and Mult-VAE: `encoder.k` over `items → hidden[0] → … → code` (Mult-VAE's last
    /// layer twice as wide: mean and log-variance), `decoder.k` back from the code to the items.
    pub(super) fn load_mult(
        spec: &AutoencoderSpec,
        flavour: Flavour,
        src: &TensorSource<'_>,
    ) -> Result<Self, InferError> {
        let sizes: Vec<usize> = std::iter::once(src.items())
            .chain(spec.hidden.iter().copied())
            .collect();
        let mut encoder_sizes = sizes.clone();
        if matches!(flavour, Flavour::Vae) {
            let code = encoder_sizes.last_mut().expect("the items at least");
            *code = code
                .checked_mul(2)
                .ok_or_else(|| src.invalid_spec(ember_spec::SpecError::Overflow))?;
        }
        let decoder_sizes: Vec<usize> = sizes.iter().rev().copied().collect();
        let layers = |part: &str, sizes: &[usize]| {
            let src = src.pp(part);
            sizes
                .windows(2)
                .enumerate()
                .map(|(k, w)| Dense::load(&src.pp(k), w[0], w[1]))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            encoder: layers("encoder", &encoder_sizes)?,
            decoder: layers("decoder", &decoder_sizes)?,
            flavour,
            history: src.user_items()?,
        })
    }

    /// CDAE: `encoder` `[items, hidden]`, `users.weight` `[users, hidden]`, `decoder`
    /// `[hidden, items]`.
    pub(super) fn load_cdae(spec: &CdaeSpec, src: &TensorSource<'_>) -> Result<Self, InferError> {
        let (items, hidden) = (src.items(), spec.hidden);
        let encoder = Dense::load(&src.pp("encoder"), items, hidden)?;
        let users = Matrix::load(src, "users.weight", src.users(), hidden)?;
        Ok(Self {
            encoder: vec![encoder],
            decoder: vec![Dense::load(&src.pp("decoder"), hidden, items)?],
            flavour: Flavour::Cdae { users },
            history: src.user_items()?,
        })
    }

    /// The code of the history `items` (distinct internal ids) of user `user` (`None`: a user
    /// the model was not trained on).
    fn code(&self, items: &[u32], user: Option<usize>) -> Vec<f32> {
        let first = &self.encoder[0];
        // The first layer reads a row with one value at each of the n items: a sum of n rows.
        let value = match self.flavour {
            Flavour::Cdae { .. } => 1.0,
            _ => 1.0 / (items.len().max(1) as f32).sqrt(), // the L2-normalised row
        };
        let mut h = first.bias.clone();
        for &i in items {
            for (o, w) in h.iter_mut().zip(first.weight.row(i as usize)) {
                *o += value * w;
            }
        }
        let mut next = Vec::new();
        for layer in &self.encoder[1..] {
            tanh(&mut h);
            layer.apply(&h, &mut next);
            std::mem::swap(&mut h, &mut next);
        }
        match &self.flavour {
            Flavour::Dae => tanh(&mut h),
            Flavour::Vae => h.truncate(h.len() / 2), // the mean; the log-variance is unused
            Flavour::Cdae { users } => {
                if let Some(u) = user {
                    h.iter_mut().zip(users.row(u)).for_each(|(v, p)| *v += p);
                }
                h.iter_mut().for_each(|v| *v = sigmoid(*v));
            }
        }
        h
    }

    /// The input of the decoder's last layer for `code`.
    fn last_hidden(&self, code: Vec<f32>) -> Vec<f32> {
        let (mut h, mut next) = (code, Vec::new());
        let last = self.decoder.len() - 1;
        for layer in &self.decoder[..last] {
            layer.apply(&h, &mut next);
            std::mem::swap(&mut h, &mut next);
            tanh(&mut h);
        }
        h
    }

    /// Logits of every item for the history `items` (distinct internal ids) of user `user`
    /// (`None`: a user the model was not trained on), into `out`.
    fn scores(&self, items: &[u32], user: Option<usize>, out: &mut Vec<f32>) {
        let h = self.last_hidden(self.code(items, user));
        self.decoder[self.decoder.len() - 1].apply(&h, out);
    }

    /// Logits of the `targets` only, for the history `items` of user `user`.
    fn scores_at(&self, items: &[u32], user: Option<usize>, targets: &[usize]) -> Vec<f32> {
        let h = self.last_hidden(self.code(items, user));
        let layer = &self.decoder[self.decoder.len() - 1];
        targets
            .iter()
            .map(|&t| {
                let w = &layer.weight;
                layer.bias[t]
                    + h.iter()
                        .enumerate()
                        .map(|(j, x)| x * w.data[j * w.cols + t])
                        .sum::<f32>()
            })
            .collect()
    }
}

impl Family for Autoencoder {
    fn user_row(&self, u: usize, out: &mut Vec<f32>) {
        self.scores(self.history.row(u), Some(u), out)
    }

    /// The items as a set: order and repeats do not matter.
    fn history_row(&self, items: &[u32], out: &mut Vec<f32>) -> Result<(), ById> {
        self.scores(&item_set(items), None, out);
        Ok(())
    }

    fn explain(
        &self,
        subject: Subject<'_>,
        targets: &[usize],
    ) -> Result<Vec<Vec<(u32, f32)>>, Unexplained> {
        let (input, user) = match subject {
            Subject::User { user, .. } => (self.history.row(user).to_vec(), Some(user)),
            Subject::History(items) => (item_set(items), None),
        };
        let first = &self.encoder[0].weight;
        let strength = |i: u32| first.row(i as usize).iter().map(|w| w * w).sum::<f32>();
        let candidates = occlusion_candidates(&input, strength);
        Ok(occlusion_because(&input, &candidates, targets, |items| {
            self.scores_at(items, user, targets)
        }))
    }

    fn user_vector(&self, user: usize) -> Result<Vec<f32>, InferError> {
        Ok(self.code(self.history.row(user), Some(user)))
    }

    fn score_scale(&self) -> ScoreScale {
        match self.flavour {
            // CDAE's loss is the logistic loss of every item.
            Flavour::Cdae { .. } => ScoreScale::Logits,
            Flavour::Dae | Flavour::Vae => ScoreScale::NextItemLogits,
        }
    }
}
