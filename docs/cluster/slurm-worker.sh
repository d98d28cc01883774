#!/bin/bash
# One Slurm job of graders for `autograder batch --cluster`: sbatch docs/cluster/slurm-worker.sh tcp://SCHEDULER:8786
#SBATCH --job-name=autograder-worker
#SBATCH --cpus-per-task=16
#SBATCH --mem=64G
#SBATCH --time=02:00:00
set -euo pipefail
scheduler=${1:?usage: sbatch slurm-worker.sh tcp://SCHEDULER:8786}
# The course's environment, with dl-autograder[cluster] and torch==2.13.0 (the same on every node).
source "${AUTOGRADER_VENV:-$HOME/autograder-venv}/bin/activate"
exec autograder worker "$scheduler" --slots "${SLURM_CPUS_PER_TASK:-1}" --name "slurm-${SLURM_JOB_ID:-0}-${SLURM_ARRAY_TASK_ID:-0}"
