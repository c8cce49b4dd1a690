#!/usr/bin/env bash
# Installs what the test suite needs beyond the build: traffic and capture tools, bpftool,
# and the Go-built test tools (the OpenTelemetry Collector and helm, cached outside the clone).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/../../xdp/install-build-deps.sh"

need=()
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v tcpreplay >/dev/null || need+=(tcpreplay)
command -v iperf3 >/dev/null || need+=(iperf3)     # TCP streams for the TSO/GSO and GRO tests (tc-hooks)
command -v ethtool >/dev/null || need+=(ethtool)   # turns TSO, GSO and GRO on and off on the test veths
command -v python3 >/dev/null || need+=(python3)   # sends UDP_SEGMENT and virtio-header GSO skbs (tc-hooks)
command -v bpftool >/dev/null || need+=(bpftool)
command -v setpriv >/dev/null || need+=(util-linux)
command -v script >/dev/null || need+=(bsdutils)   # runs the agent on a pseudo-terminal (e2e first-run)
command -v openssl >/dev/null || need+=(openssl)
command -v jq >/dev/null || need+=(jq)   # applies config/seccomp/*.jq in the image test
command -v clang-format >/dev/null || need+=(clang-format)   # npm run check: xdp/ in kernel style
# The one-node Kubernetes cluster of test/deploy/cluster.test.ts (test/tools/cluster/README.md).
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
command -v curl >/dev/null || need+=(curl)
command -v tmux >/dev/null || need+=(tmux)   # a real terminal for carnx top (test/e2e/top.test.ts)
if [ "${#need[@]}" -gt 0 ]; then
	echo "carnx tests: installing ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Built once per manifest and cached outside the clone (see test/tools/collector/README.md).
bash "$here/collector/build.sh" >/dev/null
bash "$here/install-helm.sh" >/dev/null
bash "$here/install-compose.sh" >/dev/null
# Kubernetes 1.34 server binaries and etcd for the cluster test, from the Go module proxy (about 5 minutes cold).
bash "$here/cluster/build.sh" >/dev/null
# The container image from the unmodified Dockerfile (buildah, with local stand-ins for its base images; cached
# outside the clone, see test/tools/image/README.md).
bash "$here/image/build-image.sh" >/dev/null
