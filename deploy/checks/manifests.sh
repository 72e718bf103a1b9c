#!/usr/bin/env bash
# Renders the Kubernetes manifests in deploy/k8s (the base and every overlay) with
# `kubectl kustomize` and validates each rendering against the Kubernetes 1.33 schemas
# with `kubernetes-validate --strict`, which rejects unknown fields and wrong types.
#
# kubernetes-validate only warns about kinds it has no schema for, and leaves their fields
# unchecked. This script accepts that for the Prometheus Operator kinds in CRD_KINDS, at
# apiVersion monitoring.coreos.com/v1, and fails on any other kind without a schema, so that
# a misspelled kind or apiVersion cannot pass. It also fails when a rendering outside the dev
# overlays contains a Secret, because only those overlays may carry placeholder credentials.
#
# Usage: deploy/checks/manifests.sh   (from any directory)
# Needs kubectl with kustomize, and installs kubernetes-validate with pip into the user's
# site-packages when it is missing.
set -euo pipefail

KUBERNETES_VERSION=1.33.0
VALIDATOR_VERSION=1.37.0
# Kinds without a schema in kubernetes-validate that the manifests may contain, all at
# apiVersion CRD_API_VERSION.
CRD_KINDS=(ServiceMonitor PodMonitor PrometheusRule)
CRD_API_VERSION=monitoring.coreos.com/v1

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd -- "$script_dir/../.." && pwd)
k8s_dir=$repo_root/deploy/k8s

fail() {
    echo "error: $*" >&2
    exit 1
}

find_kubectl() {
    if command -v kubectl > /dev/null; then
        command -v kubectl
    elif [[ -x /usr/bin/kubectl ]]; then
        echo /usr/bin/kubectl
    else
        fail "kubectl not found; install kubectl 1.27 or newer (it includes kustomize)"
    fi
}

find_validator() {
    local user_bin
    if command -v kubernetes-validate > /dev/null; then
        command -v kubernetes-validate
        return
    fi
    user_bin="$(python3 -m site --user-base)/bin"
    if [[ ! -x $user_bin/kubernetes-validate ]]; then
        echo "kubernetes-validate not found; installing kubernetes-validate==$VALIDATOR_VERSION with pip --user" >&2
        python3 -m pip install --quiet --user --no-warn-script-location "kubernetes-validate==$VALIDATOR_VERSION" >&2 \
            || fail "could not install kubernetes-validate==$VALIDATOR_VERSION with pip; install it with" \
                "\`pipx install kubernetes-validate==$VALIDATOR_VERSION\` or in a virtual environment, and put it on PATH"
    fi
    echo "$user_bin/kubernetes-validate"
}

kubectl_bin=$(find_kubectl)
validator_bin=$(find_validator)
echo "kubectl: $("$kubectl_bin" version --client 2>/dev/null | tr '\n' ' ')"
echo "kubernetes-validate: $("$validator_bin" --version), schemas of Kubernetes $KUBERNETES_VERSION"

work_dir=$(mktemp -d)
trap 'rm -rf -- "$work_dir"' EXIT

targets=(base)
for overlay in "$k8s_dir"/overlays/*/; do
    targets+=("overlays/$(basename -- "$overlay")")
done

# Indents each line of standard input, to set tool output apart from this script's lines.
indent() {
    sed 's/^/    /'
}

# Prints the validator's warnings about kinds without a schema, except those in CRD_KINDS.
unexpected_schemaless_kinds() {
    local output=$1 allowed
    allowed=$(IFS='|'; echo "${CRD_KINDS[*]}")
    grep -E "Couldn't find schema for kind" <<< "$output" \
        | grep -vE "for kind ($allowed) with api version ${CRD_API_VERSION//./\\.} for" || true
}

# Renders and validates one kustomization under deploy/k8s, and prints what it contains.
# Returns non-zero after printing why when the rendering is invalid.
check_target() {
    local target=$1 rendered validation unexpected kinds
    rendered=$work_dir/${target//\//_}.yaml

    if ! "$kubectl_bin" kustomize "$k8s_dir/$target" > "$rendered" 2> "$work_dir/kustomize.err"; then
        echo "FAIL $target: kubectl kustomize failed:" >&2
        indent < "$work_dir/kustomize.err" >&2
        return 1
    fi
    if [[ ! -s $rendered ]]; then
        echo "FAIL $target: kubectl kustomize rendered nothing" >&2
        return 1
    fi

    if ! validation=$("$validator_bin" --strict --quiet -k "$KUBERNETES_VERSION" "$rendered" 2>&1); then
        echo "FAIL $target: kubernetes-validate rejected the rendering:" >&2
        indent <<< "$validation" >&2
        return 1
    fi
    unexpected=$(unexpected_schemaless_kinds "$validation")
    if [[ -n $unexpected ]]; then
        echo "FAIL $target: kinds without a schema other than ${CRD_KINDS[*]} at $CRD_API_VERSION:" >&2
        indent <<< "$unexpected" >&2
        return 1
    fi

    if [[ $target != overlays/dev* ]] && grep -qE '^kind: Secret$' "$rendered"; then
        echo "FAIL $target: contains a Secret, but only the dev overlays may generate Secrets" >&2
        return 1
    fi

    kinds=$(grep -E '^kind: ' "$rendered" | sort | uniq -c | awk '{printf "%s%s %s", sep, $1, $3; sep=", "}')
    echo "ok   $target: $kinds"
    if [[ -n $validation ]]; then
        # Only the accepted warnings about CRD kinds are left here.
        sort -u <<< "${validation//$work_dir\//}" | indent
    fi
}

failures=()
for target in "${targets[@]}"; do
    check_target "$target" || failures+=("$target")
done

if ((${#failures[@]} > 0)); then
    echo "error: ${#failures[@]} of ${#targets[@]} renderings failed: ${failures[*]}" >&2
    exit 1
fi
echo "checked ${#targets[@]} renderings under deploy/k8s: ${targets[*]}"
