# Sourced by start.sh and stop.sh: where the test cluster lives and how its parts are found again.
#
# One run directory holds everything the cluster writes (certificates, etcd's data, containerd's root and state, the
# kubelet's root, pod logs, the processes' logs and pid files), so stopping it is killing what it started, unmounting
# what is mounted below it and deleting it. The few things that cannot be moved there are recorded in
# $RUN/host-state at start and put back at stop.

RUN="${CARNX_CLUSTER_DIR:-/run/carnx-cluster}"
NODE="${CARNX_CLUSTER_NODE:-carnx-node}"
# Fixed ports on 127.0.0.1, away from the components' defaults so a real Kubernetes on the machine is not in the way
# (start.sh refuses a port that is taken).
APISERVER_PORT="${CARNX_CLUSTER_APISERVER_PORT:-16443}"
ETCD_PORT="${CARNX_CLUSTER_ETCD_PORT:-12379}"
ETCD_PEER_PORT="${CARNX_CLUSTER_ETCD_PEER_PORT:-12380}"
KUBELET_PORT="${CARNX_CLUSTER_KUBELET_PORT:-11250}"
KUBELET_HEALTHZ_PORT="${CARNX_CLUSTER_KUBELET_HEALTHZ_PORT:-11248}"
CONTROLLER_MANAGER_PORT="${CARNX_CLUSTER_CONTROLLER_MANAGER_PORT:-11257}"
SCHEDULER_PORT="${CARNX_CLUSTER_SCHEDULER_PORT:-11259}"
# The sandbox image start.sh builds and imports (no registry is reachable, so nothing may ever need a pull).
PAUSE_IMAGE="carnx.test/pause:1"

CONTAINERD_SOCK="$RUN/containerd/containerd.sock"
KUBECONFIG_ADMIN="$RUN/admin.kubeconfig"
# The containerd shim hard-codes its socket directory (/run/containerd/s); nothing else is written outside $RUN.
SHIM_SOCKET_DIR=/run/containerd/s

log() { echo "$(basename "$0"): $*" >&2; }

# Pids of live processes whose command line mentions the run directory: the cluster's daemons and containerd's shims
# (their -address is the socket under $RUN). Exact to this cluster: no name matching.
pids_of_run() {
	local p
	for p in /proc/[0-9]*; do
		[[ "${p#/proc/}" == "$$" ]] && continue
		tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "$RUN/" && echo "${p#/proc/}"
	done
	return 0
}

# The kubelet's pod cgroups in every cgroup v1 hierarchy (and the unified one), deepest first.
kubepods_cgroups() {
	local root
	for root in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
		[[ -d "$root/kubepods" ]] && find "$root/kubepods" -depth -type d
	done
	return 0
}
