#!/usr/bin/env bash
# Installs what building and running carnx needs on a Debian host (clang for the BPF object,
# libbpf1 for the agent, node modules; for `npm run bench` also its traffic tools), and mounts bpffs.
# Safe to run again: it skips what is there.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

need=()
command -v clang >/dev/null || need+=(clang llvm)
[ -e /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
ldconfig -p | grep -q 'libbpf.so.1 ' || need+=(libbpf1)
command -v cc >/dev/null || need+=(gcc libc6-dev)
[ -e /usr/include/linux/bpf.h ] || need+=(linux-libc-dev)
# `npm run bench` (npm names the script in npm_lifecycle_event) also measures TCP throughput through a veth pair
# (test/bench/tcp-throughput.ts): iperf3, ethtool for the offloads, ip and ss. Nothing else needs them. Its live
# packets/s part needs no generator package: the kernel sends (BPF_PROG_TEST_RUN live frames; clang builds it).
if [ "${npm_lifecycle_event:-}" = bench ]; then
	command -v iperf3 >/dev/null || need+=(iperf3)
	command -v ethtool >/dev/null || need+=(ethtool)
	command -v ss >/dev/null || need+=(iproute2)
fi
if [ "${#need[@]}" -gt 0 ]; then
	echo "carnx: installing ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Pins live in bpffs; systemd mounts it on most hosts, minimal VMs and containers may not.
mountpoint -q /sys/fs/bpf || mount -t bpf -o mode=0700 bpf /sys/fs/bpf

# Reinstall node modules only when the lock file changed since the last install.
cd "$root"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	npm ci --no-audit --no-fund --loglevel=error
fi
