#!/usr/bin/env bash
# Builds Docker Compose v2 (only to run `docker compose config` on docker-compose.yml; no engine is needed)
# from its Go module into a cache outside the clone, and prints the binary's path as the last stdout line.
# `go install` refuses this module (its go.mod has exclude directives), so it is built from the downloaded source.
set -euo pipefail

COMPOSE_VERSION="${CARNX_COMPOSE_VERSION:-v5.6.0}"   # v5.7.0 needs Go >= 1.26.10
cache="${CARNX_TOOLS_CACHE:-/var/cache/carnx-tools}"
dir="$cache/compose-$COMPOSE_VERSION"
bin="$dir/docker-compose"

if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi

export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "install-compose.sh: go not found" >&2; exit 1; }
export GOPATH="$cache/go" GOMODCACHE="$cache/go/pkg/mod" GOCACHE="$cache/go/cache"
export GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -modcacherw -trimpath"

mkdir -p "$cache"
exec 9>"$dir.lock"
flock 9
if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi

start=$SECONDS
echo "install-compose.sh: building docker compose $COMPOSE_VERSION (a few minutes when cold)" >&2
src_dir="$(go mod download -json "github.com/docker/compose/v5@$COMPOSE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d "$src_dir" ]] || { echo "install-compose.sh: module source not found" >&2; exit 1; }
work="$dir.src"
rm -rf "$work"
cp -r "$src_dir" "$work"
chmod -R u+w "$work"
mkdir -p "$dir"
(cd "$work" && CGO_ENABLED=0 go build -o "$bin.tmp" ./cmd) >&2
mv "$bin.tmp" "$bin"
rm -rf "$work"
echo "install-compose.sh: built in $((SECONDS - start))s" >&2
echo "$bin"
