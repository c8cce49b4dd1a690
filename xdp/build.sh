#!/usr/bin/env bash
# Compiles every xdp/*.bpf.c into a BPF object beside it (clang -O2 -g -target bpf: BTF
# included, no CO-RE needed because the programs read no kernel structs).
set -euo pipefail
cd "$(dirname "$0")"
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
	clang -O2 -g -Wall -Werror -target bpf -I"$arch_include" -c "$src" -o "$obj"
done
