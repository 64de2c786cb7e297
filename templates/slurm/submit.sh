#!/bin/bash
# Queue a sharded grading on a Slurm cluster: the job array of
# grade-shard.sbatch (one task per shard), then merge.sbatch once every shard
# succeeded. Usage (see grade-shard.sbatch for what each variable is):
#   COURSE=/shared/cvcourse ASSIGNMENT=assignment1 SUBMISSIONS=/shared/subs/a1 \
#   WORK=/shared/grading/a1 SHARDS=8 templates/slurm/submit.sh
# MAX_RUNNING (optional) caps the shards running at once (Slurm's --array=...%M).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
: "${COURSE:?}" "${ASSIGNMENT:?}" "${SUBMISSIONS:?}" "${WORK:?}" "${SHARDS:?}"
if ! [[ "$SHARDS" =~ ^[1-9][0-9]*$ ]]; then
    echo "submit.sh: SHARDS must be a positive integer, not '$SHARDS'" >&2
    exit 2
fi
export COURSE ASSIGNMENT SUBMISSIONS WORK SHARDS
mkdir -p "$WORK/logs" "$WORK/shards"
range="0-$((SHARDS - 1))${MAX_RUNNING:+%$MAX_RUNNING}"
array=$(sbatch --parsable --array="$range" --export=ALL --chdir="$WORK" \
    "$here/grade-shard.sbatch")
array=${array%%;*}  # "jobid;cluster" on multi-cluster setups
merge=$(sbatch --parsable --dependency="afterok:$array" --export=ALL --chdir="$WORK" \
    "$here/merge.sbatch")
echo "queued: shards as job array $array, merge as job ${merge%%;*}; results in $WORK/grades"
