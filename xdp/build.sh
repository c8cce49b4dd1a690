#!/usr/bin/env bash
# Compiles every xdp/*.bpf.c into a BPF object beside it (clang -O2 -g -target bpf: BTF
# included, no CO-RE needed because the programs read no kernel structs).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v clang >/dev/null; then
	echo "carnx: clang is not installed: run 'npm run setup' (Debian/Ubuntu, as root) or install clang and llvm, then build again" >&2
	exit 1
fi
arch_include="/usr/include/$(uname -m)-linux-gnu"   # asm/types.h lives here on Debian
# Rebuilds an object when its source or any header here is newer (every program may include any).
newer_than_headers() {
	local h
	for h in *.h; do
		[ "$1" -nt "$h" ] || return 1
	done
}
for src in *.bpf.c; do
	obj="${src%.c}.o"
	if [ "$obj" -nt "$src" ] && newer_than_headers "$obj"; then
		continue
	fi
	echo "carnx: compiling xdp/$src" >&2
	if ! clang -O2 -g -Wall -Werror -target bpf -I"$arch_include" -c "$src" -o "$obj"; then
		echo "carnx: could not compile xdp/$src (clang's error is above): run 'npm run setup' to install clang, libbpf-dev and the kernel headers, then 'npm run build' again" >&2
		exit 1
	fi
done
