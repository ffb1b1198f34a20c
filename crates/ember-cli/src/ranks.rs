//! The ranks of a distributed `ember train` (`mpirun -np N ember train …`): MPI is joined
//! when the process was started by an MPI launcher and ember was built with the `mpi`
//! feature; otherwise the run is one process.

use anyhow::{Result, bail};
use ember_train::collective;

/// The ranks this process trains with.
pub struct Ranks {
    /// For the trainer.
    pub group: collective::Ranks,
    #[cfg(feature = "mpi")]
    mpi: Option<std::sync::Arc<ember_train::mpi_group::MpiGroup>>,
}

impl Ranks {
    /// Joins the MPI job this process was started in, if any.
    #[cfg(feature = "mpi")]
    pub fn join() -> Result<Self> {
        use ember_train::mpi_group::{self, MpiGroup};
        if !mpi_group::launched() {
            return Ok(Self {
                group: collective::Ranks::default(),
                mpi: None,
            });
        }
        let Some(mpi) = MpiGroup::init() else {
            bail!("MPI could not be initialised (was it initialised twice?)");
        };
        // One rank per GPU: its index among the ranks on its machine.
        ember_train::device::use_gpu_index(mpi_group::local_rank());
        if mpi.size_of_job() > 1 {
            // A panic would unwind into MPI_Finalize, which waits for the other ranks while
            // they wait for this one in a collective: the job would hang. The process ends at
            // once instead, and mpirun (or srun) ends the job.
            let report = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                report(info);
                std::process::abort();
            }));
        }
        let mpi = std::sync::Arc::new(mpi);
        Ok(Self {
            group: collective::Ranks(mpi.clone()),
            mpi: Some(mpi),
        })
    }

    /// Without MPI compiled in, a run started as one of several ranks is refused: each would
    /// train the whole model alone and write its own run directory.
    #[cfg(not(feature = "mpi"))]
    pub fn join() -> Result<Self> {
        // SLURM_STEP_NUM_TASKS, set by srun (an sbatch script alone has SLURM_NTASKS too).
        let ranks = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"]
            .iter()
            .find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok())
            .unwrap_or(1);
        if ranks > 1 {
            bail!(
                "started as one of {ranks} MPI ranks, but this ember was built without MPI: build it with `cargo build --release --features ember-cli/mpi` (README, \"Distributed training\")"
            );
        }
        Ok(Self {
            group: collective::Ranks::default(),
        })
    }

    /// Whether this process reports the run (rank 0).
    pub fn is_root(&self) -> bool {
        self.group.is_root()
    }

    /// After an error on this rank: the other ranks may be waiting for it in a collective,
    /// so the whole job is ended (MPI_Abort) with `code`. A single process just returns.
    pub fn end_job(&self, code: u8) {
        #[cfg(feature = "mpi")]
        if let Some(mpi) = &self.mpi
            && mpi.as_ref().size_of_job() > 1
        {
            mpi.abort(code as i32);
        }
        let _ = code;
    }
}
