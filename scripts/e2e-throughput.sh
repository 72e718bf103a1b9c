#!/usr/bin/env bash
# Measures the end-to-end training throughput of the Adult contrastive example
# on 1, 2 and 3 worker agents on this machine: a coordinator with SQLite and
# local checkpoints, N release-built `ssl-worker` processes, one job each.
#
# Usage: scripts/e2e-throughput.sh [EPOCHS]   (default 3)
# Prints, per world size, the median of the samples/s that rank 0 reports in
# its heartbeats while the job runs, and the wall time from RUNNING to SUCCEEDED.
set -euo pipefail
cd "$(dirname "$0")/.."

epochs=${1:-3}
target=${CARGO_TARGET_DIR:-target}
# The default members: the same build (and features) as the README's quick start.
cargo build --release >&2
bin="$target/release"
repo=$(pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

echo "bench-token" > "$work/tokens"
echo "bench-join" > "$work/join"
export SSLCTL_TOKEN=bench-token SSLCTL_ENDPOINT=http://127.0.0.1:50161

for workers in 1 2 3; do
    run="$work/run-$workers"
    mkdir -p "$run"
    "$bin/ssl-coordinator" --listen 127.0.0.1:50161 --data-dir "$run/coordinator" \
        --token-file "$work/tokens" --join-token-file "$work/join" 2> "$run/coordinator.log" &
    coordinator=$!
    pids=()
    for index in $(seq 1 "$workers"); do
        "$bin/ssl-worker" --coordinator http://127.0.0.1:50161 --join-token-file "$work/join" \
            --name "bench-$index" 2> "$run/worker-$index.log" &
        pids+=($!)
    done

    sed -e "s|uri: data/|uri: $repo/examples/data/|" -e "s|test_uri: data/|test_uri: $repo/examples/data/|" \
        -e "s|epochs: [0-9]*|epochs: $epochs|" -e "s|min: [0-9]*|min: $workers|" -e "s|max: [0-9]*|max: $workers|" \
        examples/adult-contrastive.yaml > "$run/spec.yaml"
    sleep 2
    job=$("$bin/sslctl" submit -f "$run/spec.yaml")
    "$bin/sslctl" watch "$job" > "$run/watch.log"

    median=$(grep -o '[0-9]* samples/s' "$run/watch.log" | awk '{print $1}' | sort -n |
        awk '{v[NR]=$1} END {if (NR == 0) print "n/a"; else print v[int((NR + 1) / 2)]}')
    started=$(grep -m1 -- '-> RUNNING' "$run/watch.log" | awk '{print $1}')
    finished=$(grep -m1 -- '-> SUCCEEDED' "$run/watch.log" | awk '{print $1}')
    seconds=$(( $(date -d "$finished" +%s) - $(date -d "$started" +%s) ))
    echo "workers=$workers median_samples_per_second=$median running_to_succeeded_seconds=$seconds"

    kill "${pids[@]}" "$coordinator" 2>/dev/null || true
    wait "${pids[@]}" "$coordinator" 2>/dev/null || true
done
