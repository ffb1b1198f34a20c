//! Sequence models: SASRec's attention is causal, BERT4Rec's bidirectional, padding changes
//! nothing in either, and the next-item losses equal their formulas.

use burn::module::Param;
use burn::nn::Embedding;
use burn::prelude::*;
use burn::tensor::Distribution;
use ember_models::sasrec::SasRec;
use ember_models::{
    Batch, Bert4Rec, Bert4RecConfig, ModelInit, Query, Recommender, SasRecConfig, SequenceBatch,
    SequenceLoss,
};

const ITEMS: usize = 30;
const LEN: usize = 8;

/// A catalogue of `ITEMS` items (sequence models read no user table).
fn catalogue() -> ModelInit<'static> {
    ModelInit::new(ITEMS, &[])
}

/// Models on a device without autodiff, where dropout is off.
fn sasrec(device: &Device) -> SasRec {
    device.seed(7);
    SasRecConfig {
        hidden: 16,
        blocks: 2,
        heads: 2,
        max_len: LEN,
        dropout: 0.5,
        loss: SequenceLoss::Bce,
        negatives: 1,
    }
    .init(&catalogue(), device)
}

fn bert4rec(device: &Device) -> Bert4Rec {
    device.seed(7);
    Bert4RecConfig {
        hidden: 16,
        blocks: 2,
        heads: 2,
        max_len: LEN,
        dropout: 0.1,
        mask_prob: 0.3,
    }
    .init(&catalogue(), device)
}

fn tokens(rows: &[[i32; LEN]], device: &Device) -> Tensor<2, Int> {
    let flat: Vec<i32> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), LEN]), device)
}

fn values(t: Tensor<3>) -> Vec<f32> {
    t.try_into_vec_as::<f32>().unwrap()
}

/// Largest difference at positions `positions` of row 0 of two `[1, LEN, hidden]` outputs.
fn max_difference(a: &[f32], b: &[f32], positions: std::ops::Range<usize>) -> f32 {
    let hidden = a.len() / LEN;
    positions
        .flat_map(|t| (t * hidden..(t + 1) * hidden).map(|j| (a[j] - b[j]).abs()))
        .fold(0.0, f32::max)
}

/// The same embedding table with the padding row (row 0) replaced by random values.
fn with_random_padding_row(table: &Embedding) -> Embedding {
    let weight = table.weight.val();
    let [_, hidden] = weight.dims();
    let noise = Tensor::random(
        [1, hidden],
        Distribution::Normal(0.0, 3.0),
        &weight.device(),
    );
    Embedding {
        weight: Param::from_tensor(weight.slice_assign([0..1, 0..hidden], noise)),
    }
}

#[test]
fn sasrec_output_at_t_ignores_later_items() {
    let device = Device::flex();
    let model = sasrec(&device);
    let base = [3, 7, 1, 9, 4, 12, 5, 8];
    for t in 0..LEN - 1 {
        let mut changed = base;
        for (k, token) in changed.iter_mut().enumerate().skip(t + 1) {
            *token = 20 + k as i32;
        }
        let a = values(model.forward(tokens(&[base], &device)));
        let b = values(model.forward(tokens(&[changed], &device)));
        assert!(
            max_difference(&a, &b, 0..t + 1) < 1e-5,
            "output at or before position {t} moved when later items changed"
        );
        assert!(
            max_difference(&a, &b, t + 1..LEN) > 1e-3,
            "the changed positions' outputs should move"
        );
    }
}

#[test]
fn bert4rec_reads_both_directions() {
    let device = Device::flex();
    let model = bert4rec(&device);
    let base = [3, 7, 1, 9, 4, 12, 5, 8];
    let mut changed = base;
    changed[LEN - 1] = 21;
    let a = values(model.forward(tokens(&[base], &device)));
    let b = values(model.forward(tokens(&[changed], &device)));
    assert!(
        max_difference(&a, &b, 0..1) > 1e-4,
        "the first position should see the last item"
    );
}

#[test]
fn sasrec_padding_changes_nothing() {
    let device = Device::flex();
    let model = sasrec(&device);
    let padded = [0, 0, 0, 0, 6, 2, 11, 3];
    let a = values(model.forward(tokens(&[padded], &device)));
    // Whatever the padding row holds, real positions are unchanged.
    let mut perturbed = model.clone();
    perturbed.items = with_random_padding_row(&model.items);
    let b = values(perturbed.forward(tokens(&[padded], &device)));
    assert!(max_difference(&a, &b, 4..LEN) < 1e-5);
    // The final layer norm maps a zero state to its bias; what matters is that padded states
    // carry no information: equal whatever the padding row holds.
    assert!(max_difference(&a, &b, 0..4) < 1e-5);

    // Scores and losses do not depend on the padding row either.
    let scores = |m: &SasRec| {
        m.score_all(&Query::Windows(tokens(&[padded], &device)))
            .try_into_vec_as::<f32>()
            .unwrap()
    };
    let (sa, sb) = (scores(&model), scores(&perturbed));
    assert!(sa.iter().zip(&sb).all(|(x, y)| (x - y).abs() < 1e-5));
    let batch = SequenceBatch {
        inputs: tokens(&[padded], &device),
        positions: Tensor::from_data(TensorData::new(vec![4i32, 5, 6, 7], [4]), &device),
        targets: Tensor::from_data(TensorData::new(vec![1i32, 10, 2, 14], [4]), &device),
        negatives: Some(Tensor::from_data(
            TensorData::new(vec![20i32, 21, 22, 23], [4, 1]),
            &device,
        )),
    };
    let batch = Batch::Sequences(batch);
    let la = model.loss(&batch, 0).into_scalar::<f32>();
    let lb = perturbed.loss(&batch, 0).into_scalar::<f32>();
    assert!((la - lb).abs() < 1e-5, "loss {la} vs {lb}");
}

#[test]
fn bert4rec_padding_changes_nothing() {
    let device = Device::flex();
    let model = bert4rec(&device);
    let mask = ITEMS as i32 + 1;
    let padded = [0, 0, 0, 0, 6, 2, 11, mask];
    let a = values(model.forward(tokens(&[padded], &device)));
    let mut perturbed = model.clone();
    perturbed.items = with_random_padding_row(&model.items);
    let b = values(perturbed.forward(tokens(&[padded], &device)));
    assert!(max_difference(&a, &b, 4..LEN) < 1e-5);
}

#[test]
fn sasrec_window_length_changes_nothing_but_padding() {
    // The same history in a batch with a longer one: rows are independent.
    let device = Device::flex();
    let model = sasrec(&device);
    let short = [0, 0, 0, 0, 0, 6, 2, 11];
    let long = [4, 9, 13, 1, 7, 6, 2, 11];
    let alone = values(model.forward(tokens(&[short], &device)));
    let together = values(model.forward(tokens(&[short, long], &device)));
    assert!(max_difference(&alone, &together[..alone.len()], 0..LEN) < 1e-5);
}

/// Each loss against its formula, computed by hand from the same model's hidden states and item
/// vectors.
#[test]
fn next_item_losses_match_their_formulas() {
    let device = Device::flex();
    let inputs = [0, 0, 0, 5, 9, 2, 7, 1];
    let positions = [5i32, 6, 7];
    let targets = [3i32, 8, 4];
    let negatives = [10i32, 11, 12, 13, 14, 15]; // two per target
    let ints =
        |v: &[i32]| Tensor::<1, Int>::from_data(TensorData::new(v.to_vec(), [v.len()]), &device);
    for loss in [
        SequenceLoss::Bce,
        SequenceLoss::SampledSoftmax,
        SequenceLoss::Softmax,
    ] {
        let model = SasRecConfig {
            hidden: 16,
            blocks: 2,
            heads: 2,
            max_len: LEN,
            dropout: 0.5,
            loss,
            negatives: 2,
        }
        .init(&catalogue(), &device);
        let hidden: Vec<f32> = values(model.forward(tokens(&[inputs], &device)));
        let dim = hidden.len() / LEN;
        let table: Vec<f32> = model.items.weight.val().try_into_vec_as::<f32>().unwrap();
        // Item i's vector is row i + 1.
        let dot = |t: usize, item: i32| -> f32 {
            (0..dim)
                .map(|j| hidden[t * dim + j] * table[(item as usize + 1) * dim + j])
                .sum()
        };
        let softplus = |x: f32| (1.0 + x.exp()).ln();
        let mut per_target = Vec::new();
        for (j, (&p, &target)) in positions.iter().zip(&targets).enumerate() {
            let t = p as usize;
            let s_pos = dot(t, target);
            let s_neg: Vec<f32> = negatives[2 * j..2 * j + 2]
                .iter()
                .map(|&n| dot(t, n))
                .collect();
            let value = match loss {
                // Both terms averaged, as SASRec's code does: 3 targets, 6 negatives.
                SequenceLoss::Bce => {
                    softplus(-s_pos) / 3.0 + s_neg.iter().map(|&s| softplus(s)).sum::<f32>() / 6.0
                }
                SequenceLoss::SampledSoftmax => {
                    let denominator = s_pos.exp() + s_neg.iter().map(|s| s.exp()).sum::<f32>();
                    -(s_pos.exp() / denominator).ln() / 3.0
                }
                SequenceLoss::Softmax => {
                    let all: f32 = (0..ITEMS as i32).map(|i| dot(t, i).exp()).sum();
                    -(s_pos.exp() / all).ln() / 3.0
                }
            };
            per_target.push(value);
        }
        let want: f32 = per_target.iter().sum();
        let batch = SequenceBatch {
            inputs: tokens(&[inputs], &device),
            positions: ints(&positions),
            targets: ints(&targets),
            negatives: Some(ints(&negatives).reshape([3, 2])),
        };
        let got = model.loss(&Batch::Sequences(batch), 0).into_scalar::<f32>();
        assert!(
            (got - want).abs() < 1e-4 * want.abs().max(1.0),
            "{loss:?}: {got} vs {want}"
        );
    }
}

fn gru4rec(device: &Device, layers: usize) -> ember_models::Gru4Rec {
    device.seed(9);
    ember_models::Gru4RecConfig {
        embedding: 8,
        hidden: 12,
        layers,
        max_len: LEN,
        dropout: 0.3,
        loss: ember_models::Gru4RecLoss::Softmax,
        negatives: 4,
        bpreg: 1.0,
    }
    .init(&catalogue(), device)
}

#[test]
fn gru4rec_state_at_t_ignores_later_items() {
    let device = Device::flex();
    let model = gru4rec(&device, 2);
    let base = [3, 7, 1, 9, 4, 12, 5, 8];
    for t in 0..LEN - 1 {
        let mut changed = base;
        for (k, token) in changed.iter_mut().enumerate().skip(t + 1) {
            *token = 20 + k as i32;
        }
        let a = values(model.forward(tokens(&[base], &device)));
        let b = values(model.forward(tokens(&[changed], &device)));
        assert!(max_difference(&a, &b, 0..t + 1) < 1e-6);
        assert!(max_difference(&a, &b, t + 1..LEN) > 1e-4);
    }
}

#[test]
fn gru4rec_padding_changes_nothing() {
    let device = Device::flex();
    let model = gru4rec(&device, 2);
    // The same three items, alone and after left padding: the last state is the same.
    let padded = [0, 0, 0, 0, 0, 6, 2, 11];
    let short = Tensor::<2, Int>::from_data(TensorData::new(vec![6i32, 2, 11], [1, 3]), &device);
    let a = values(model.forward(tokens(&[padded], &device)));
    let b = values(model.forward(short));
    let dim = b.len() / 3;
    for j in 0..3 * dim {
        assert!(
            (a[5 * dim + j] - b[j]).abs() < 1e-5,
            "{} vs {}",
            a[5 * dim + j],
            b[j]
        );
    }
    // Whatever the padding row holds.
    let mut perturbed = model.clone();
    perturbed.items = with_random_padding_row(&model.items);
    let c = values(perturbed.forward(tokens(&[padded], &device)));
    assert!(max_difference(&a, &c, 5..LEN) < 1e-6);
}
