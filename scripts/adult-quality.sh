#!/usr/bin/env bash
# Pretrains both example methods on UCI Adult with seeds 1 to 5. Then it prints,
# per method, the linear probe at 1% labels on SSL embeddings and on raw features
# as mean ± sample standard deviation of accuracy, ROC AUC and kNN accuracy.
#
#   scripts/adult-quality.sh [OUTPUT_DIR]
#
# Builds the release `ssl-worker` first. Takes a few minutes on 2 cores.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$(mktemp -d /tmp/adult-quality.XXXXXX)}
mkdir -p "$out"
# The default members: the same build (and features) as the README's quick start.
cargo build --release --manifest-path "$repo/Cargo.toml" >&2
worker="${CARGO_TARGET_DIR:-$repo/target}/release/ssl-worker"

for method in contrastive masked; do
    sed -e "s|uri: data/adult/|uri: $repo/examples/data/adult/|" \
        -e "s|test_uri: data/adult/|test_uri: $repo/examples/data/adult/|" \
        -e "s|label_fractions: \[0.01, 0.1, 1.0\]|label_fractions: [0.01]|" \
        "$repo/examples/adult-$method.yaml" > "$out/adult-$method-1pct.yaml"
    for seed in 1 2 3 4 5; do
        echo "training $method with seed $seed" >&2
        "$worker" train --spec "$out/adult-$method-1pct.yaml" --seed "$seed" \
            --json-out "$out/$method-$seed.json" > /dev/null 2> "$out/$method-$seed.log"
    done
done

python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
print("| method | features | probe accuracy | probe ROC AUC | kNN accuracy |")
print("|---|---|---|---|---|")
for method in ["contrastive", "masked"]:
    by_features = {}
    for seed in range(1, 6):
        with open(f"{out}/{method}-{seed}.json") as file:
            for score in json.load(file)["evaluation"]["scores"]:
                by_features.setdefault(score["features"], []).append(score)
    for features, scores in by_features.items():
        def summary(key):
            values = [score[key] for score in scores]
            return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"
        print(f"| {method} | {features} | {summary('probe_accuracy')} | {summary('probe_roc_auc')} | {summary('knn_accuracy')} |")
PY
