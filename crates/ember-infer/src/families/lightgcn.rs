//! LightGCN (He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for
//! Recommendation", SIGIR 2020).
//!
//! Training propagates the embeddings over the user–item graph and combines the layers
//! (eq. 4); the export holds those final embeddings, so inference is the dot product of
//! eq. 5, `ŷ = e_u · e_i`: MF's scoring, with its fast paths (the blocked kernel over the item
//! table, int8 rows kept quantised). Its explanations and user vectors are MF's too: the
//! cosine of the final item embeddings, and the final user embedding.

use ember_spec::LightGcnSpec;

use super::ncf::Factors;
use crate::InferError;
use crate::source::TensorSource;

/// `users.weight` `[users, factors]` and `items.weight` `[items, factors]`, the final
/// embeddings. (`spec.layers` records how they were made; scoring does not need it.)
pub(super) fn load(spec: &LightGcnSpec, src: &TensorSource<'_>) -> Result<Factors, InferError> {
    Factors::load_tables(src, spec.factors)
}

#[cfg(test)]
mod tests {
    use crate::writer::{load_in_memory, tensor, test_manifest};
    use crate::{FactorsSpec, Key, LightGcnSpec, ModelData, ModelSpec, Precision};

    /// LightGCN's export is final embeddings scored as MF scores its tables: every query gives
    /// the same answer, bit for bit, at f32 and int8, on a catalogue larger than a kernel block.
    #[test]
    fn lightgcn_scores_as_mf_on_the_same_tables() {
        let (users, items, factors) = (3usize, 1_100usize, 5usize);
        let mut state = 3u64;
        let mut random = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect()
        };
        let tensors = vec![
            tensor("users.weight", &[users, factors], &random(users * factors)),
            tensor("items.weight", &[items, factors], &random(items * factors)),
        ];
        for precision in [Precision::F32, Precision::Int8] {
            let load = |spec| {
                let manifest = test_manifest(spec, precision, users, items);
                load_in_memory(&manifest, &tensors, ModelData::None).unwrap()
            };
            let mf = load(ModelSpec::Mf(FactorsSpec { factors }));
            let gcn = load(ModelSpec::LightGcn(LightGcnSpec { factors, layers: 3 }));
            for u in 0..users as u32 {
                assert_eq!(mf.item_scores_internal(u), gcn.item_scores_internal(u));
                let user = Key::Integer(10 + u as i64);
                let exclude = [Key::Integer(100), Key::Integer(105)];
                assert_eq!(
                    mf.recommend(&user, 7, &exclude).unwrap(),
                    gcn.recommend(&user, 7, &exclude).unwrap()
                );
            }
            let pairs: Vec<(u32, u32)> = (0..50).map(|k| (k % 3, (k * 37) % 1_100)).collect();
            assert_eq!(
                mf.score_internal_pairs(&pairs),
                gcn.score_internal_pairs(&pairs)
            );
            let item = Key::Integer(150);
            assert_eq!(
                mf.audience(&item, 3).unwrap(),
                gcn.audience(&item, 3).unwrap()
            );
            // A customer it was not trained on: folded in as MF folds them in.
            let history = [Key::Integer(100), Key::Integer(105)];
            assert_eq!(
                mf.recommend_history(&history, 7, &[]).unwrap(),
                gcn.recommend_history(&history, 7, &[]).unwrap()
            );
        }
    }
}
