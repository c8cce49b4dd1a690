#!/usr/bin/env bash
# Formats xdp/*.c and xdp/*.h with the repository's .clang-format (kernel style), in place.
# --check: change nothing; list what is not formatted and exit 1 if anything is.
# Without clang-format: skips with a message, unless CI is set, where that is an error.
set -euo pipefail
cd "$(dirname "$0")"

check=0
case "${1:-}" in
--check) check=1 ;;
'') ;;
*)
	echo "usage: bash xdp/format.sh [--check]" >&2
	exit 2
	;;
esac

if ! command -v clang-format >/dev/null; then
	if [ -n "${CI:-}" ]; then
		echo "xdp/format.sh: clang-format is not installed, and CI is set: install it (apt-get install clang-format)" >&2
		exit 1
	fi
	echo "xdp/format.sh: clang-format is not installed; skipping the C format check (apt-get install clang-format)" >&2
	exit 0
fi

files=(*.c *.h)
# --style=file finds ../.clang-format; say which version judged, since versions format differently.
if [ "$check" = 1 ]; then
	if ! clang-format --style=file --dry-run --Werror "${files[@]}"; then
		echo "xdp/format.sh: xdp/ is not formatted ($(clang-format --version)); run: bash xdp/format.sh" >&2
		exit 1
	fi
	echo "xdp/format.sh: xdp/ is formatted ($(clang-format --version))"
else
	clang-format --style=file -i "${files[@]}"
fi
