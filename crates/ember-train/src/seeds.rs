//! Every seed of a run, derived here from the run's `seed`. Each is fixed by its position (the
//! stage, the epoch, the batch), never by what was drawn before it: a run resumed from a
//! checkpoint draws what an uninterrupted one draws, and no generator state is saved.
//!
//! - a stage's seed: the run's for the main model, [`pretraining_stage`] for NeuMF's GMF and
//!   MLP;
//! - burn's generator while a stage's model is built ([`stage_init`]) and while its
//!   parameters are first initialised ([`materialize`]);
//! - an epoch's own generator: shuffling, negatives, masked items ([`epoch`]);
//! - burn's generator at each step: dropout masks, sampled noise ([`step`], and [`replica`]
//!   for each rank of a data-parallel run);
//! - the test split's sampled negatives ([`test_negatives`]; validation's use the run's seed).

use crate::collective::Shard;

/// The seed of pre-training stage `k` (from 0) of a run seeded `run`.
pub fn pretraining_stage(run: u64, k: usize) -> u64 {
    run.wrapping_add(1).wrapping_add(k as u64)
}

/// The seed of burn's generator before stage `index`'s model is built: fixed by the stage, so
/// a resumed run builds what an uninterrupted one builds (the first stage's is the run's seed).
pub fn stage_init(run: u64, index: usize) -> u64 {
    if index == 0 {
        run
    } else {
        epoch(run ^ 0x1417, index)
    }
}

/// The seed of burn's generator while a stage seeded `stage` initialises its parameters, in the
/// model's own order (that of the first batch of its first epoch).
pub fn materialize(stage: u64) -> u64 {
    step(stage, 1, 0)
}

/// The seed of epoch `epoch`'s own generator (shuffling, negatives, masked items) in a stage
/// seeded `stage`.
pub fn epoch(stage: u64, epoch: usize) -> u64 {
    mix(stage, epoch as u64)
}

/// The seed of burn's generator (dropout masks, sampled noise) for batch `batch` of epoch
/// `epoch` of a stage seeded `stage`.
pub fn step(stage: u64, epoch: usize, batch: usize) -> u64 {
    mix(mix(stage ^ 0x5eed_5eed, epoch as u64), batch as u64)
}

/// The seed of burn's generator for replica `replica` of a data-parallel run at a step seeded
/// `step`: each rank draws its own dropout masks; a single process draws `step` itself.
pub fn replica(step: u64, replica: Shard) -> u64 {
    if replica.ranks == 1 {
        step
    } else {
        mix(step, replica.rank as u64)
    }
}

/// The seed of the test split's sampled negatives, apart from validation's (the run's seed).
pub fn test_negatives(run: u64) -> u64 {
    run ^ 0x7e57
}

/// SplitMix64's finaliser over `a` and `b`: `b` steps of SplitMix64's increment from `a`,
/// plus one, then its output function.
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    let mut z = a
        .wrapping_add(b.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64 seeded 0 first outputs 0xe220a8397b1dcdaf (Vigna's reference code).
    #[test]
    fn mix_is_splitmix64() {
        assert_eq!(mix(0, 0), 0xe220_a839_7b1d_cdaf);
    }

    /// The seeds every run so far was trained with: a change here changes every result, and
    /// makes older checkpoints resume into other runs.
    #[test]
    fn seeds_keep_their_values() {
        assert_eq!(pretraining_stage(42, 0), 43);
        assert_eq!(pretraining_stage(42, 1), 44);
        assert_eq!(stage_init(42, 0), 42);
        assert_eq!(stage_init(42, 2), 0x4e38_cada_474d_48a3);
        assert_eq!(stage_init(42, 5), 0x6630_a691_bf12_c773);
        assert_eq!(epoch(42, 1), 0x28ef_e333_b266_f103);
        assert_eq!(epoch(43, 7), 0xe22a_53d0_64a0_b63a);
        assert_eq!(step(42, 1, 0), 0xf5a9_a71a_1dd7_4e39);
        assert_eq!(step(42, 3, 17), 0xccf3_906c_9766_fce6);
        assert_eq!(materialize(42), step(42, 1, 0));
        let first = step(42, 1, 0);
        assert_eq!(replica(first, Shard::WHOLE), first);
        assert_eq!(
            replica(first, Shard { rank: 1, ranks: 2 }),
            0xf493_e97f_1cfe_60ab
        );
        assert_eq!(test_negatives(42), 42 ^ 0x7e57);
    }
}
