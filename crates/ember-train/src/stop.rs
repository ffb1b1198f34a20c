//! The stop signal: a stop asked for from outside (Ctrl-C, SIGTERM), after which training
//! writes a checkpoint and ends. Each rank of a distributed run is signalled on its own, and
//! all must stop at the same batch: asking is a collective call, made by every rank together.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::collective::Collective;

/// A flag set from outside, read by every rank together.
#[derive(Clone)]
pub(crate) struct StopSignal {
    /// Set by a signal handler (`None`: nothing can ask this run to stop).
    flag: Option<Arc<AtomicBool>>,
    ranks: Arc<dyn Collective>,
}

impl StopSignal {
    /// The signal of `flag`, among `ranks`.
    pub(crate) fn new(flag: Option<Arc<AtomicBool>>, ranks: Arc<dyn Collective>) -> Self {
        Self { flag, ranks }
    }

    /// Whether a stop was asked for on any rank. Every rank must ask at the same point.
    pub(crate) fn requested(&self) -> bool {
        let local = self.flag.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
        self.ranks.any(local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collective::Solo;
    use crate::collective::tests::TwoRanks;

    #[test]
    fn a_stop_is_requested_once_the_flag_is_set() {
        let flag = Arc::new(AtomicBool::new(false));
        let signal = StopSignal::new(Some(flag.clone()), Arc::new(Solo));
        assert!(!signal.requested());
        flag.store(true, Ordering::SeqCst);
        assert!(signal.requested());
        assert!(!StopSignal::new(None, Arc::new(Solo)).requested());
    }

    /// A stop asked of the other rank stops this one too, at the same ask: each ask is one
    /// collective call, so that every rank makes the same ones.
    #[test]
    fn a_stop_on_another_rank_is_seen_on_every_rank() {
        let ranks = Arc::new(TwoRanks {
            partner: 1.0,
            ..TwoRanks::default()
        });
        let signal = StopSignal::new(Some(Arc::new(AtomicBool::new(false))), ranks.clone());
        assert!(signal.requested());
        let quiet = StopSignal::new(None, Arc::new(TwoRanks::default()));
        assert!(!quiet.requested());
        assert_eq!(ranks.sums.load(Ordering::SeqCst), 1);
    }
}
