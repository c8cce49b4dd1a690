#!/usr/bin/env bash
# Installs what building and running carnx needs on a Debian host (clang for the BPF object,
# libbpf1 for the agent, node modules; for `npm run bench` also its traffic tools), and mounts bpffs.
# Safe to run again: it skips what is there.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# Every failure says what it was doing and what to try next.
step="checking the build dependencies"
trap 'echo "carnx: failed while $step; fix the error above and run this again (README.md: Troubleshooting)" >&2' ERR

node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
node_minor="$(node -p 'process.versions.node.split(".")[1]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 20 ] || { [ "$node_major" -eq 20 ] && [ "$node_minor" -lt 6 ]; }; then
	echo "carnx: needs Node.js >= 20.6 (found $(node --version 2>/dev/null || echo none)): install a newer Node.js (nodejs.org or your distribution) and run this again" >&2
	exit 1
fi

need=()
command -v clang >/dev/null || need+=(clang llvm)
[ -e /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
ldconfig -p | grep -q 'libbpf.so.1 ' || need+=(libbpf1)
command -v cc >/dev/null || need+=(gcc libc6-dev)
[ -e /usr/include/linux/bpf.h ] || need+=(linux-libc-dev)
# `npm run bench` (npm names the script in npm_lifecycle_event) also measures TCP throughput through a veth pair
# (test/bench/tcp-throughput.ts): iperf3, ethtool for the offloads, ip and ss. Nothing else needs them.
if [ "${npm_lifecycle_event:-}" = bench ]; then
	command -v iperf3 >/dev/null || need+=(iperf3)
	command -v ethtool >/dev/null || need+=(ethtool)
	command -v ss >/dev/null || need+=(iproute2)
fi
if [ "${#need[@]}" -gt 0 ]; then
	if ! command -v apt-get >/dev/null; then
		echo "carnx: missing ${need[*]} (Debian names); this script installs with apt-get only: install the same with your package manager (clang, llvm, libbpf and its headers, a C compiler, kernel headers) and run this again" >&2
		exit 1
	fi
	if [ "$(id -u)" -ne 0 ]; then
		echo "carnx: missing ${need[*]}: run this as root (sudo npm start) or install them: apt-get install ${need[*]}" >&2
		exit 1
	fi
	step="installing ${need[*]} with apt-get"
	echo "carnx: installing ${need[*]} (apt-get, a minute or two on a fresh host)..." >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Pins live in bpffs; systemd mounts it on most hosts, minimal VMs and containers may not.
if ! mountpoint -q /sys/fs/bpf; then
	step="mounting bpffs on /sys/fs/bpf"
	if ! mount -t bpf -o mode=0700 bpf /sys/fs/bpf; then
		echo "carnx: could not mount bpffs on /sys/fs/bpf: run this as root; in a container, mount the host's /sys/fs/bpf into it (config/README.md)" >&2
		exit 1
	fi
fi

# Reinstall node modules only when the lock file changed since the last install.
cd "$root"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	step="installing the node modules (npm ci)"
	echo "carnx: installing the node modules (npm ci)..." >&2
	npm ci --no-audit --no-fund --loglevel=error
fi
trap - ERR
