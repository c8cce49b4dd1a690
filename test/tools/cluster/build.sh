#!/usr/bin/env bash
# Build the binaries of a one-node Kubernetes cluster from the Go module proxy (the only source reachable here):
# kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl and etcd. They are built once into
# ${CARNX_TOOLS_CACHE:-/var/cache/carnx-tools}/kubernetes-<version>/, outside the clone. The last stdout line is the
# path of etcd, the one built last (the shared tool_cache_begin prints one binary); the others are beside it.
# Everything else goes to stderr:
#   BIN="$(dirname "$(test/tools/cluster/build.sh | tail -n1)")"
set -euo pipefail

# 1.34: the newest minor whose kubelet still starts on a cgroup v1 host without opting in (1.35 sets failCgroupV1
# by default), and it runs with Debian 12's containerd 1.6 (CRI v1; without the RuntimeConfig call the kubelet falls
# back to its own cgroupDriver). Patch releases of k8s.io/kubernetes and of its staging modules (k8s.io/api v0.34.x,
# ...) are published together with the same numbers.
K8S_VERSION="${CARNX_K8S_VERSION:-v1.34.4}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../go-tool-cache.sh
source "$here/../go-tool-cache.sh"
# etcd is built last, so its presence means the whole set is there.
tool_cache_begin "kubernetes-$K8S_VERSION" etcd -trimpath

start=$SECONDS
echo "build.sh: building Kubernetes $K8S_VERSION and etcd into $dir (about 5 minutes cold on 2 cores)" >&2
tmp="$dir.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/work"
cd "$tmp/work"

# k8s.io/kubernetes cannot be `go install`ed: its go.mod points every k8s.io staging module at ./staging/src/...,
# which is not part of the published module. A throwaway module requires it and sends each of those modules to its
# published release instead (v1.34.4 -> v0.34.4).
staging="v0${K8S_VERSION#v1}"
go mod init carnx.test/cluster-binaries >&2
go mod edit -require "k8s.io/kubernetes@$K8S_VERSION"
go mod download "k8s.io/kubernetes@$K8S_VERSION" >&2
k8s_src="$(go list -m -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')"
for mod in $(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$k8s_src/go.mod"); do
	go mod edit -replace "$mod=$mod@$staging"
done

# etcd has no main package in a module without replace directives either: this small main calls its entry point.
# Its version is the one Kubernetes itself requires (the client the apiserver speaks with is from the same release).
mkdir etcd
cat >etcd/main.go <<'GO'
// etcd's command line, built from go.etcd.io/etcd/server/v3 as published on the module proxy.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
cat >tools.go <<'GO'
//go:build tools

// The commands to build, required here so `go mod tidy` resolves every module they need.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
# -e: tidy also resolves the test imports of every package, some of which the proxy may not serve; the build below
# still fails loudly if something it needs is missing.
go mod tidy -e >&2

# CGO off: static binaries, no C toolchain; -s -w: no symbol tables (smaller, faster to link). One `go build` per
# binary in a single cache, so the packages they share compile once.
export CGO_ENABLED=0
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
	t=$SECONDS
	go build -ldflags "$ldflags" -o "$tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd" >&2
	echo "build.sh: $cmd in $((SECONDS - t))s" >&2
done
t=$SECONDS
go build -ldflags "-s -w" -o "$tmp/etcd" ./etcd >&2
echo "build.sh: etcd in $((SECONDS - t))s" >&2

# Atomic publish (rename on one filesystem): the cached directory holds either nothing or the complete set.
rm -rf "$dir"
mv "$tmp" "$dir"
echo "build.sh: built in $((SECONDS - start))s" >&2
echo "$bin"
