#!/usr/bin/env bash
# Installs the CRD schema validator (npm packages pinned by package-lock.json) into a cache
# directory keyed by the content of this folder, so a second run is a no-op and a change of
# pins installs afresh. Prints the directory that holds validate.mjs and its node_modules.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${TASK_PLATFORM_CACHE:-$HOME/.cache/task-platform}/chart-crd-validator"
key="$(cat "$here/package.json" "$here/package-lock.json" "$here/validate.mjs" | sha256sum | cut -c1-16)"
target="$cache_root/$key"

if [ ! -f "$target/.installed" ]; then
  command -v npm >/dev/null || { echo "install-crd-validator: npm is required" >&2; exit 1; }
  rm -rf "$target.tmp"
  mkdir -p "$target.tmp"
  cp "$here/package.json" "$here/package-lock.json" "$here/validate.mjs" "$target.tmp/"
  (cd "$target.tmp" && npm ci --silent --no-audit --no-fund --ignore-scripts --engine-strict=false >&2)
  touch "$target.tmp/.installed"
  rm -rf "$target"
  mv "$target.tmp" "$target"
  # Earlier pins are of no further use.
  find "$cache_root" -mindepth 1 -maxdepth 1 ! -name "$key" -exec rm -rf {} +
fi
printf '%s\n' "$target"
