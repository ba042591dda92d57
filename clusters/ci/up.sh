#!/usr/bin/env bash
# Brings up the platform on a local kind cluster, as the e2e workflow does:
#   clusters/ci/up.sh [git-url] [branch]
# Needs docker, kind, kubectl and the flux CLI. Flux reconciles clusters/ci from the given
# branch of the repository (default: this clone's origin and current branch, which must be
# pushed), then the script waits until every Kustomization and HelmRelease is Ready.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
url="${1:-$(git -C "$here" remote get-url origin)}"
branch="${2:-$(git -C "$here" rev-parse --abbrev-ref HEAD)}"
flux_version="${FLUX_VERSION:-v2.8.5}" # the bootstrap's version (clusters/<env>/flux-system)

kind get clusters | grep -qx task-platform || kind create cluster --config "$here/kind.yaml" --wait 120s
flux install --version="$flux_version"
kubectl apply -f "$here/cluster-vars.yaml"
# The Slack webhook that OpenTofu writes on EKS; here a local address that accepts nothing.
kubectl -n flux-system create secret generic flux-notifications-slack \
  --from-literal=address=http://127.0.0.1:9/ --dry-run=client -o yaml | kubectl apply -f -

auth=()
if [ -n "${GITHUB_TOKEN:-}" ]; then auth=(--username=git --password="$GITHUB_TOKEN"); fi
flux create source git flux-system --url="$url" --branch="$branch" "${auth[@]}" \
  --ignore-paths="clusters/**/flux-system/"
flux create kustomization flux-system --source=GitRepository/flux-system --path=./clusters/ci \
  --prune=true --interval=10m

kubectl -n flux-system wait kustomization/flux-system --for=condition=ready --timeout=5m
for ks in notifications infra-controllers infra-configs; do
  kubectl -n flux-system wait "kustomization/$ks" --for=condition=ready --timeout=45m
done
kubectl wait helmrelease --all --all-namespaces --for=condition=ready --timeout=10m
flux get all --all-namespaces
