#!/usr/bin/env bash
# Install helm (from source, via the Go module proxy: the only way to get it
# here) into a cache outside the repo clone, and print the binary's path as
# the last stdout line. Everything else goes to stderr, so callers can do:
#   HELM="$(test/tools/install-helm.sh | tail -n1)"
set -euo pipefail

# Newest v3 on the module proxy that builds with our Go 1.26 toolchain.
HELM_VERSION="${CARNX_HELM_VERSION:-v3.22.0}"

# shellcheck source=go-tool-cache.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-tool-cache.sh"
tool_cache_begin "helm-$HELM_VERSION" helm -trimpath

start=$SECONDS
echo "install-helm.sh: building helm $HELM_VERSION (a few minutes when cold)" >&2
# Install into a temp GOBIN, then rename: the cached path only ever holds a
# complete binary. CGO off: static binary, no C toolchain needed.
tmp="$dir.tmp"
rm -rf "$tmp"
# -X version: like helm's release Makefile, so `helm version` reports the full
# tag (without it a go-install build says just "v3.22").
CGO_ENABLED=0 GOBIN="$tmp" go install \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
mkdir -p "$dir"
mv "$tmp/helm" "$bin"
rmdir "$tmp"
echo "install-helm.sh: built in $((SECONDS - start))s" >&2
echo "$bin"
