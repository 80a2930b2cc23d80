#!/usr/bin/env bash
# Validate the Helm chart offline, for every municipality's values file (values-<name>.yaml):
# `helm lint --strict`, then `helm template` into kubeconform -strict against the Kubernetes
# JSON schemas (K8S_SCHEMAS, unpacked by deploy/helm/k8s_schemas.py) and ours for Strimzi's
# KafkaTopic (deploy/helm/schemas/). No schema may be missing. Then the chart's own guards:
# rendering fails on too many replicas, a misspelt key, a missing Secret name or directory, a
# bad partner channel name; and the chart never renders a Secret. `make manifests` runs this
# with the tools it installs.
#
#   HELM=... KUBECONFORM=... K8S_SCHEMAS=... KUBERNETES_VERSION=1.33.0 deploy/helm/validate.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
chart=$here/buurtalert
: "${HELM:?}" "${KUBECONFORM:?}" "${K8S_SCHEMAS:?}" "${KUBERNETES_VERSION:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

kubeconform() {
  "$KUBECONFORM" -strict -summary -kubernetes-version "$KUBERNETES_VERSION" \
    -schema-location "$K8S_SCHEMAS/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    -schema-location "$here/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" "$@"
}

# render NAME ARGS...: helm template of the chart for one municipality; output in $work/NAME.yaml
render() {
  local name=$1; shift
  "$HELM" template "buurtalert-$name" "$chart" --namespace "buurtalert-$name" \
    --kube-version "$KUBERNETES_VERSION" "$@" > "$work/$name.yaml"
}

# refused DESCRIPTION EXPECTED-MESSAGE ARGS...: rendering must fail, saying EXPECTED-MESSAGE
refused() {
  local what=$1 expected=$2; shift 2
  if "$HELM" template check "$chart" --kube-version "$KUBERNETES_VERSION" "$@" > /dev/null 2> "$work/err"; then
    echo "[helm] the chart rendered $what; it must refuse" >&2; return 1
  fi
  if ! grep -qF -- "$expected" "$work/err"; then
    echo "[helm] $what refused, but without saying \"$expected\":" >&2; cat "$work/err" >&2; return 1
  fi
  echo "[helm] refused as it should: $what"
}

count=0
for values in "$chart"/values-*.yaml; do
  name=$(basename "$values" .yaml); name=${name#values-}
  directory=$root/deploy/demo/$name/directory.yaml
  args=(-f "$values" --set-file "directory.content=$directory")
  "$HELM" lint --strict --quiet "$chart" --kube-version "$KUBERNETES_VERSION" "${args[@]}"
  render "$name" "${args[@]}"
  if grep -q '^kind: Secret$' "$work/$name.yaml"; then
    echo "[helm] values-$name.yaml renders a Secret: secrets come from existing Secrets only" >&2; exit 1
  fi
  echo "[helm] values-$name.yaml: $(grep -c '^kind: ' "$work/$name.yaml") resources"
  kubeconform "$work/$name.yaml"
  count=$((count + 1))
done
[ "$count" -gt 0 ] || { echo "[helm] no values-<municipality>.yaml in $chart" >&2; exit 1; }

# The guards, on the first municipality's values.
base=(-f "$chart/values-weert.yaml" --set-file "directory.content=$root/deploy/demo/weert/directory.yaml")
refused "more routing replicas than its topics have partitions" \
  "services.routing.replicas is 4, but routing reads the topic" \
  "${base[@]}" --set services.routing.replicas=4
refused "a second review console process" \
  "services.review.replicas is 2, but the review console runs as one process" \
  "${base[@]}" --set services.review.replicas=2
refused "a misspelt key (values.schema.json)" "additional properties 'replica' not allowed" \
  "${base[@]}" --set services.routing.replica=2
refused "no municipality file Secret" "municipalityFile.existingSecret" \
  "${base[@]}" --set municipalityFile.existingSecret=
refused "no MongoDB Secret" "mongo.existingSecret" "${base[@]}" --set mongo.existingSecret=
refused "no directory to load" "directory.load" -f "$chart/values-weert.yaml"
refused "a partner channel that is no channel name" "is not a channel name" \
  "${base[@]}" --set 'kafka.partnerChannels={Bad_Name}'
refused "a partner channel named as a built-in adapter" "is a built-in adapter" \
  "${base[@]}" --set 'kafka.partnerChannels={whatsapp}'
# A partner adapter gets its delivery topic; the review service (issue 14) renders when enabled.
render partner "${base[@]}" --set 'kafka.partnerChannels={meldingenportaal}' --set services.review.enabled=true
grep -q 'topicName: "weert.deliveries.meldingenportaal"' "$work/partner.yaml" \
  || { echo "[helm] kafka.partnerChannels gave no deliveries.meldingenportaal topic" >&2; exit 1; }
grep -q 'name: buurtalert-partner-review$' "$work/partner.yaml" \
  || { echo "[helm] services.review.enabled gave no review Deployment" >&2; exit 1; }
kubeconform "$work/partner.yaml"
