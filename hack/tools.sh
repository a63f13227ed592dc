#!/usr/bin/env bash
# Builds the test-ground binaries from their Go modules at the versions pinned in
# hack/tools.versions, into bin/ (ignored by git).
#
# Each tool is built once per version into a cache outside the work tree
# (BERTH_TOOLS_CACHE, default ~/.cache/berth/tools/<tool>-<version>) and copied into bin/,
# so a fresh clone on a machine that built them before gets them in seconds. Go's own module
# and build caches are reused as usual. A tool is rebuilt only when its pinned version changes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
source "$root/hack/tools.versions"
bin="$root/bin"
cache="${BERTH_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/tools}"
mkdir -p "$bin" "$cache"
export GOFLAGS="${GOFLAGS:--buildvcs=false} -trimpath"
export CGO_ENABLED=0
command -v go >/dev/null || { echo "tools: Go is required to build the test ground (go 1.25 or newer)" >&2; exit 1; }

# ensure NAME VERSION BUILD_FUNCTION BINARIES...: builds into the cache unless present, then
# installs into bin/ when bin/ holds another version.
ensure() {
  local name=$1 version=$2 build=$3; shift 3
  local dest="$cache/$name-$version" stamp="$bin/.$name.version"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$version" ]]; then
    local ok=1; for b in "$@"; do [[ -x "$bin/$b" ]] || ok=0; done
    if (( ok )); then echo "tools: $name $version is up to date"; return; fi
  fi
  if [[ ! -f "$dest/.complete" ]]; then
    local start=$SECONDS work
    echo "tools: building $name $version ..."
    rm -rf "$dest"; mkdir -p "$dest"
    work=$(mktemp -d)
    ( cd "$work" && "$build" "$version" "$dest" ) || { rm -rf "$work" "$dest"; echo "tools: building $name $version failed" >&2; return 1; }
    rm -rf "$work"
    touch "$dest/.complete"
    echo "tools: built $name $version in $((SECONDS - start))s"
  fi
  for b in "$@"; do install -m 0755 "$dest/$b" "$bin/$b"; done
  echo "$version" > "$stamp"
  echo "tools: installed $name $version ($*) into bin/"
}

# A wrapper module: `go install` refuses modules with replace directives, so each of these
# gets a throw-away main module that requires it.
wrapper() { go mod init berth.dev/tools/"$1" >/dev/null 2>&1; }

build_kubernetes() {
  local v=$1 dest=$2 minor staging
  wrapper kubernetes
  go mod edit -require="k8s.io/kubernetes@$v"
  # k8s.io/kubernetes replaces its staging modules with ./staging paths; point each at the
  # published release with the same minor (v1.36.3 -> v0.36.3).
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod")
  [[ -n "$staging" ]] || { echo "no staging modules found in $gomod" >&2; return 1; }
  for m in $staging; do go mod edit -replace="$m=$m@v0.${v#v1.}"; done
  printf 'package tools\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n\t_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"\n\t_ "k8s.io/kubernetes/cmd/kube-scheduler/app"\n\t_ "k8s.io/kubernetes/cmd/kubelet/app"\n\t_ "k8s.io/kubernetes/cmd/kube-proxy/app"\n\t_ "k8s.io/kubectl/pkg/cmd"\n)\n' > tools.go
  go mod tidy >/dev/null
  minor=${v#v1.}; minor=${minor%%.*}
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  go build -ldflags "$ld" -o "$dest/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
}

build_etcd() {
  local v=$1 dest=$2
  wrapper etcd
  printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' > main.go
  go mod edit -require="go.etcd.io/etcd/server/v3@$v"
  go mod tidy >/dev/null
  go build -ldflags "-s -w" -o "$dest/etcd" .
}

# Plain `go build` of a main package from a module that needs no replace directives.
build_kwok() { GOFLAGS="$GOFLAGS" go install "sigs.k8s.io/kwok/cmd/kwok@$1" && mv "$(go env GOPATH)/bin/kwok" "$2/kwok"; }
build_registry() { GOBIN="$2" go install -ldflags "-s -w" "github.com/distribution/distribution/v3/cmd/registry@$1"; }
build_crane() { GOBIN="$2" go install -ldflags "-s -w" "github.com/google/go-containerregistry/cmd/crane@$1"; }
# The real node (test/harness/node.ts): containerd 2 with its CRI plugin and runc shim, CoreDNS
# for cluster DNS inside the node, and crictl to look inside. CGO is off, so containerd's btrfs
# snapshotter (cgo) is left out; the node uses overlayfs or native.
build_containerd() {
  GOBIN="$2" go install -tags "no_btrfs no_devmapper no_zfs" -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$1" \
    "github.com/containerd/containerd/v2/cmd/containerd@$1" "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$1" \
    "github.com/containerd/containerd/v2/cmd/ctr@$1"
}
build_coredns() { GOBIN="$2" go install -ldflags "-s -w" "github.com/coredns/coredns@$1"; }
build_crictl() { GOBIN="$2" go install -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$1" "sigs.k8s.io/cri-tools/cmd/crictl@$1"; }
build_helm() { GOBIN="$2" go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$1" "helm.sh/helm/v3/cmd/helm@$1"; }

total=$SECONDS
only="${1:-all}"
want() { [[ "$only" == all || " $only " == *" $1 "* ]]; }
want etcd && ensure etcd "$ETCD_VERSION" build_etcd etcd
want registry && ensure registry "$DISTRIBUTION_VERSION" build_registry registry
want crane && ensure crane "$CRANE_VERSION" build_crane crane
want kwok && ensure kwok "$KWOK_VERSION" build_kwok kwok
want helm && ensure helm "$HELM_VERSION" build_helm helm
want kubernetes && ensure kubernetes "$KUBERNETES_VERSION" build_kubernetes kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy
want containerd && ensure containerd "$CONTAINERD_VERSION" build_containerd containerd containerd-shim-runc-v2 ctr
want coredns && ensure coredns "$COREDNS_VERSION" build_coredns coredns
want crictl && ensure crictl "$CRICTL_VERSION" build_crictl crictl
echo "tools: done in $((SECONDS - total))s"
