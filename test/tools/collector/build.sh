#!/usr/bin/env bash
# Build the carnx test collector (carnx-otelcol) from builder-config.yaml once,
# cache it outside the repo clone, and print the binary's path as the last
# stdout line. Everything else goes to stderr so callers can do:
#   OTELCOL="$(test/tools/collector/build.sh | tail -n1)"
set -euo pipefail

# Must match the core version in builder-config.yaml (ocb checks this).
OCB_VERSION=v0.165.0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/builder-config.yaml"
# Key the cache on the manifest's content, not the clone's path: any clone of
# the same manifest reuses the binary, and any edit forces a rebuild.
hash="$(sha256sum "$manifest" | cut -c1-12)"
# -e (honoured only by go commands that have it, i.e. ocb's `go mod tidy`):
# tidy also resolves the components' *test* imports, and one of them (contrib
# otlpencodingextension, imported only by fileexporter's tests) is not served
# by our module proxy (403). -e lets tidy finish; the binary doesn't need it,
# and `go build` still fails loudly if anything it does need is missing.
# shellcheck source=../go-tool-cache.sh
source "$here/../go-tool-cache.sh"
tool_cache_begin "otelcol-$hash" carnx-otelcol -e

start=$SECONDS
ocb="$cache/ocb-$OCB_VERSION/builder"
if [[ ! -x "$ocb" ]]; then
  echo "build.sh: installing ocb $OCB_VERSION" >&2
  GOBIN="$cache/ocb-$OCB_VERSION" go install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION" >&2
fi

# Fresh work dir each attempt so a half-finished build never counts as cached.
work="$dir/work"
rm -rf "$work"
mkdir -p "$work"
cp "$manifest" "$dir/builder-config.yaml"   # record what this binary was built from
echo "build.sh: building carnx-otelcol into $dir (several minutes when cold)" >&2
# dist.output_path is relative (./dist), so run ocb from the work dir.
# ocb itself builds with -trimpath and -ldflags '-s -w'.
(cd "$work" && "$ocb" --config "$dir/builder-config.yaml") >&2
# Atomic publish (rename on one filesystem): a reader sees either no binary or
# a complete one. work/dist keeps the generated go.mod/go.sum for debugging.
mv "$work/dist/carnx-otelcol" "$bin"
echo "build.sh: built in $((SECONDS - start))s" >&2
echo "$bin"
