//! The processes a run trains with, and how they share work: the collective operations
//! ([`Collective`]: MPI's in `mpi_group`, or [`Solo`] for one process), a handle on them
//! ([`Ranks`]), a rank's part of each batch ([`Shard`]), and the training loop's gradient hook
//! ([`GradientSync`]). A leaf: the modules that train, evaluate and checkpoint all read it,
//! and it reads none of them.

use burn::optim::GradientsParams;
use ember_models::Model;
use std::ops::Range;
use std::sync::Arc;

/// The collective operations of a group of processes (MPI ranks). Every rank calls each
/// operation in the same order with buffers of the same length (the gathers excepted).
pub trait Collective {
    /// This process's rank, from 0.
    fn rank(&self) -> usize;
    /// Ranks in the group.
    fn size(&self) -> usize;
    /// Sums `values` element-wise over the ranks, in place; every rank gets the same result.
    fn sum_f32(&self, values: &mut [f32]);
    /// Sums `values` element-wise over the ranks, in place.
    fn sum_f64(&self, values: &mut [f64]);
    /// Every rank's `values`, concatenated in rank order, with each rank's count.
    fn gather_f32(&self, values: &[f32]) -> (Vec<f32>, Vec<usize>);
    /// Every rank's `values`, concatenated in rank order, with each rank's count.
    fn gather_u32(&self, values: &[u32]) -> (Vec<u32>, Vec<usize>);
    /// Every rank's `values`, concatenated in rank order, with each rank's count.
    fn gather_bytes(&self, values: &[u8]) -> (Vec<u8>, Vec<usize>);
    /// Rank 0's `values` on every rank.
    fn broadcast_f32(&self, values: &mut [f32]);

    /// Whether `flag` is set on any rank.
    fn any(&self, flag: bool) -> bool {
        if self.size() == 1 {
            return flag;
        }
        let mut v = [flag as u8 as f64];
        self.sum_f64(&mut v);
        v[0] > 0.0
    }

    /// Returns once every rank has called it.
    fn barrier(&self) {
        // A sum waits for every rank's part: the cheapest collective that does.
        self.any(false);
    }
}

/// The ranks of a run: a shared handle on their [`Collective`], [`Solo`] by default.
#[derive(Clone)]
pub struct Ranks(pub Arc<dyn Collective>);

impl Default for Ranks {
    fn default() -> Self {
        Ranks(Arc::new(Solo))
    }
}

impl std::fmt::Debug for Ranks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ranks(rank {} of {})", self.0.rank(), self.0.size())
    }
}

impl Ranks {
    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.0.rank()
    }

    /// Ranks in the run.
    pub fn size(&self) -> usize {
        self.0.size()
    }

    /// Whether this process writes the run's files (rank 0).
    pub fn is_root(&self) -> bool {
        self.0.rank() == 0
    }

    /// The collective operations among the ranks.
    pub fn collective(&self) -> &dyn Collective {
        self.0.as_ref()
    }
}

/// One process on its own.
#[derive(Debug, Default, Clone, Copy)]
pub struct Solo;

impl Collective for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn sum_f32(&self, _values: &mut [f32]) {}
    fn sum_f64(&self, _values: &mut [f64]) {}
    fn gather_f32(&self, values: &[f32]) -> (Vec<f32>, Vec<usize>) {
        (values.to_vec(), vec![values.len()])
    }
    fn gather_u32(&self, values: &[u32]) -> (Vec<u32>, Vec<usize>) {
        (values.to_vec(), vec![values.len()])
    }
    fn gather_bytes(&self, values: &[u8]) -> (Vec<u8>, Vec<usize>) {
        (values.to_vec(), vec![values.len()])
    }
    fn broadcast_f32(&self, _values: &mut [f32]) {}
}

/// A rank's place among the ranks, for splitting work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This rank.
    pub rank: usize,
    /// Ranks in all.
    pub ranks: usize,
}

impl Shard {
    /// All the work, in one process.
    pub const WHOLE: Shard = Shard { rank: 0, ranks: 1 };

    /// The shard of `collective`'s rank.
    pub fn of(collective: &dyn Collective) -> Self {
        Self {
            rank: collective.rank(),
            ranks: collective.size(),
        }
    }

    /// This rank's part of `range`: consecutive parts in rank order, of sizes that differ by
    /// at most one (a part may be empty when `range` has fewer elements than there are ranks).
    pub fn part(self, range: Range<usize>) -> Range<usize> {
        let n = range.len();
        range.start + n * self.rank / self.ranks..range.start + n * (self.rank + 1) / self.ranks
    }
}

/// What happens to gradients between the backward pass and the optimiser step.
///
/// On one device nothing; for data-parallel training over several processes (the
/// `distributed` module's `ReplicaSync`) the replicas' gradients are averaged here, and the
/// rest of the loop stays as it is.
pub trait GradientSync {
    /// Returns the gradients to apply, given this replica's `grads` of `examples` examples of
    /// `model` (`None` when its share of the batch was empty).
    fn sync(
        &mut self,
        model: &Model,
        grads: Option<GradientsParams>,
        examples: usize,
    ) -> GradientsParams;

    /// Sums `values` over the replicas (an epoch's loss and counts).
    fn sum(&mut self, _values: &mut [f64]) {}

    /// Which replica this is, of how many.
    fn replica(&self) -> Shard {
        Shard::WHOLE
    }

    /// What the sync cost since the last report, for the log.
    fn report(&mut self) -> Option<String> {
        None
    }
}

/// Training on a single device.
#[derive(Debug, Default)]
pub struct SingleDevice;

impl GradientSync for SingleDevice {
    fn sync(
        &mut self,
        _model: &Model,
        grads: Option<GradientsParams>,
        _examples: usize,
    ) -> GradientsParams {
        grads.unwrap_or_else(GradientsParams::new)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Rank 0 of two, whose partner holds `partner` in every sum (a flag it has set, or not):
    /// enough to see what a collective call on rank 0 returns. Counts the sums.
    #[derive(Default)]
    pub(crate) struct TwoRanks {
        pub(crate) partner: f64,
        pub(crate) sums: AtomicUsize,
    }

    impl Collective for TwoRanks {
        fn rank(&self) -> usize {
            0
        }
        fn size(&self) -> usize {
            2
        }
        fn sum_f32(&self, values: &mut [f32]) {
            values.iter_mut().for_each(|v| *v += self.partner as f32);
        }
        fn sum_f64(&self, values: &mut [f64]) {
            self.sums.fetch_add(1, Ordering::SeqCst);
            values.iter_mut().for_each(|v| *v += self.partner);
        }
        fn gather_f32(&self, values: &[f32]) -> (Vec<f32>, Vec<usize>) {
            (values.repeat(2), vec![values.len(); 2])
        }
        fn gather_u32(&self, values: &[u32]) -> (Vec<u32>, Vec<usize>) {
            (values.repeat(2), vec![values.len(); 2])
        }
        fn gather_bytes(&self, values: &[u8]) -> (Vec<u8>, Vec<usize>) {
            (values.repeat(2), vec![values.len(); 2])
        }
        fn broadcast_f32(&self, _values: &mut [f32]) {}
    }

    #[test]
    fn parts_are_consecutive_cover_the_range_and_differ_by_at_most_one() {
        for n in 0..12 {
            for ranks in 1..5 {
                let parts: Vec<_> = (0..ranks)
                    .map(|rank| Shard { rank, ranks }.part(3..3 + n))
                    .collect();
                assert_eq!(parts[0].start, 3);
                assert_eq!(parts[ranks - 1].end, 3 + n);
                for w in parts.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                }
                let (min, max) = (
                    parts.iter().map(|p| p.len()).min().unwrap(),
                    parts.iter().map(|p| p.len()).max().unwrap(),
                );
                assert!(max - min <= 1, "{n} over {ranks}: {parts:?}");
            }
        }
    }

    /// A flag set on either rank is set on both; a barrier is one collective call, and a
    /// single process makes none.
    #[test]
    fn any_sees_every_ranks_flag_and_a_barrier_is_one_sum() {
        let quiet = TwoRanks::default();
        assert!(!quiet.any(false));
        assert!(quiet.any(true));
        let signalled = TwoRanks {
            partner: 1.0,
            ..TwoRanks::default()
        };
        assert!(signalled.any(false));
        signalled.barrier();
        assert_eq!(signalled.sums.load(Ordering::SeqCst), 2);
        assert!(Solo.any(true) && !Solo.any(false));
        Solo.barrier();
    }
}
