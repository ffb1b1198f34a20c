//! [`Collective`] over MPI: rsmpi on the system's MPI library (Debian's Open MPI), what
//! `mpirun -np N ember train` and Slurm's `srun` start. Compiled with the `mpi` cargo feature.

use mpi::Count;
use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use crate::collective::Collective;

/// Elements per all-reduce call (MPI counts are 32-bit).
const MAX_COUNT: usize = 1 << 28;

/// The processes of `MPI_COMM_WORLD`. MPI is finalised when this is dropped.
pub struct MpiGroup {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    // Dropped last: finalises MPI.
    _universe: Universe,
}

/// Whether this process was started by an MPI launcher (`mpirun`, `mpiexec`, `srun`), from the
/// variables Open MPI, PMIx, MPICH's PMI and Slurm's srun set (an sbatch script itself is not a
/// launched rank: it has no SLURM_STEP_NUM_TASKS).
pub fn launched() -> bool {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMIX_RANK",
        "PMI_SIZE",
        "SLURM_STEP_NUM_TASKS",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some())
}

/// This process's rank among those on its machine, as the launcher gives it (0 when it does
/// not): the GPU a rank uses.
pub fn local_rank() -> usize {
    [
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "MPI_LOCALRANKID",
        "SLURM_LOCALID",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.parse().ok())
    .unwrap_or(0)
}

impl MpiGroup {
    /// Initialises MPI; `None` when it was initialised already.
    pub fn init() -> Option<Self> {
        let universe = mpi::initialize()?;
        let world = universe.world();
        Some(Self {
            rank: world.rank() as usize,
            size: world.size() as usize,
            world,
            _universe: universe,
        })
    }

    /// Ranks in the job.
    pub fn size_of_job(&self) -> usize {
        self.size
    }

    /// Ends every rank of the job with exit code `code` (after a rank's error: the others,
    /// waiting in a collective, would otherwise wait for ever).
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }

    fn gather<T: Equivalence + Default + Clone>(&self, values: &[T]) -> (Vec<T>, Vec<usize>) {
        let mine = Count::try_from(values.len()).expect("a gather of under 2^31 elements");
        let mut counts = vec![0 as Count; self.size];
        self.world.all_gather_into(&mine, &mut counts[..]);
        let displs: Vec<Count> = counts
            .iter()
            .scan(0 as Count, |at, &c| {
                let start = *at;
                *at = at
                    .checked_add(c)
                    .expect("a gather of under 2^31 elements in all");
                Some(start)
            })
            .collect();
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        let mut all = vec![T::default(); total];
        {
            let mut partition = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
            self.world.all_gather_varcount_into(values, &mut partition);
        }
        (all, counts.iter().map(|&c| c as usize).collect())
    }
}

impl Collective for MpiGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn sum_f32(&self, values: &mut [f32]) {
        for chunk in values.chunks_mut(MAX_COUNT) {
            let send = chunk.to_vec();
            self.world
                .all_reduce_into(&send[..], chunk, SystemOperation::sum());
        }
    }

    fn sum_f64(&self, values: &mut [f64]) {
        for chunk in values.chunks_mut(MAX_COUNT) {
            let send = chunk.to_vec();
            self.world
                .all_reduce_into(&send[..], chunk, SystemOperation::sum());
        }
    }

    fn gather_f32(&self, values: &[f32]) -> (Vec<f32>, Vec<usize>) {
        self.gather(values)
    }

    fn gather_u32(&self, values: &[u32]) -> (Vec<u32>, Vec<usize>) {
        self.gather(values)
    }

    fn gather_bytes(&self, values: &[u8]) -> (Vec<u8>, Vec<usize>) {
        self.gather(values)
    }

    fn broadcast_f32(&self, values: &mut [f32]) {
        let root = self.world.process_at_rank(0);
        for chunk in values.chunks_mut(MAX_COUNT) {
            root.broadcast_into(chunk);
        }
    }
}
