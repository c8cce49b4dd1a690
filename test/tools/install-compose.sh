#!/usr/bin/env bash
# Builds Docker Compose v2 (only to run `docker compose config` on docker-compose.yml; no engine is needed)
# from its Go module into a cache outside the clone, and prints the binary's path as the last stdout line.
# `go install` refuses this module (its go.mod has exclude directives), so it is built from the downloaded source.
set -euo pipefail

COMPOSE_VERSION="${CARNX_COMPOSE_VERSION:-v5.6.0}"   # v5.7.0 needs Go >= 1.26.10
# shellcheck source=go-tool-cache.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-tool-cache.sh"
tool_cache_begin "compose-$COMPOSE_VERSION" docker-compose

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
