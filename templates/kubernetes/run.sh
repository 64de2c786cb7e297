#!/bin/bash
# Grade in shards on Kubernetes, then merge: apply grade-shards.yaml, wait for
# every index to complete, apply merge.yaml, wait, print the merge's log.
# Usage: templates/kubernetes/run.sh [NAMESPACE]   (TIMEOUT, default 6h)
# A failed index fails the Job: read `kubectl logs job/grade-shards`, fix,
# delete the Job and run this again (shards that finished keep their reports,
# so a re-run regrades only what changed or failed).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ns=(--namespace "${1:-default}")
timeout=${TIMEOUT:-6h}
kubectl "${ns[@]}" delete job grade-shards merge-shards --ignore-not-found
kubectl "${ns[@]}" apply -f "$here/grade-shards.yaml"
kubectl "${ns[@]}" wait --for=condition=complete --timeout="$timeout" job/grade-shards
kubectl "${ns[@]}" apply -f "$here/merge.yaml"
kubectl "${ns[@]}" wait --for=condition=complete --timeout=30m job/merge-shards
kubectl "${ns[@]}" logs job/merge-shards
