# Sourced by the scripts that build test tools from Go modules (collector, helm, compose). They build each tool
# once into ${CARNX_TOOLS_CACHE:-/var/cache/carnx-tools}, outside the clone, and print its path as the last line.
#
# tool_cache_begin DIR BINARY [EXTRA_GOFLAGS]: prints the cached binary and exits when it is there; otherwise sets
# up a Go environment kept entirely under the cache (GOPATH, module and build caches: `rm -rf` of the cache is a
# full reset, -modcacherw keeps it deletable; GOTOOLCHAIN=local never fetches another toolchain), takes a lock so
# parallel callers share one build, and looks once more. Sets $cache, $dir and $bin.
tool_cache_begin() {
	cache="${CARNX_TOOLS_CACHE:-/var/cache/carnx-tools}"
	dir="$cache/$1"
	bin="$dir/$2"
	if [[ -x "$bin" ]]; then
		echo "$bin"
		exit 0
	fi
	export PATH="$PATH:/usr/local/go/bin"   # go is not always on PATH (CI shells)
	command -v go >/dev/null || { echo "$(basename "$0"): go not found" >&2; exit 1; }
	export GOPATH="$cache/go" GOMODCACHE="$cache/go/pkg/mod" GOCACHE="$cache/go/cache"
	export GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -modcacherw ${3:-}"
	mkdir -p "$cache"
	exec 9>"$dir.lock"
	flock 9
	if [[ -x "$bin" ]]; then   # another caller finished it while we waited
		echo "$bin"
		exit 0
	fi
}
