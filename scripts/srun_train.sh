#!/usr/bin/env bash
# Data-parallel ember training on a Slurm cluster: one rank per GPU, launched by srun.
#
#   sbatch --nodes=2 --ntasks-per-node=8 --gpus-per-node=8 scripts/srun_train.sh configs/X.toml
#
# ember must be built with MPI against the cluster's MPI library (Open MPI with PMIx here):
#   cargo build --release --features ember-cli/mpi,ember-cli/vulkan
# Every rank reads the config's data files and, when resuming, the run directory: both must be
# on a file system all nodes share. Rank 0 writes the run directory; the others keep nothing.
#SBATCH --job-name=ember
#SBATCH --time=04:00:00
#SBATCH --cpus-per-task=4
set -euo pipefail
config=${1:?usage: sbatch scripts/srun_train.sh CONFIG [ember train options...]}
shift
ember=${EMBER:-target/release/ember}
# One rank per GPU: ember picks the discrete GPU given by the rank's local index
# (SLURM_LOCALID), so each task sees every GPU of its node; no CUDA_VISIBLE_DEVICES juggling.
# A task that dies ends the step (--kill-on-bad-exit), as mpirun does.
exec srun --mpi=pmix --kill-on-bad-exit=1 --cpu-bind=cores \
    "$ember" train --config "$config" --device vulkan --no-progress "$@"
