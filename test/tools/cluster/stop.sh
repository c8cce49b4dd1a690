#!/usr/bin/env bash
# Stop the test cluster started by start.sh and leave the machine as it was: every process it started (daemons,
# containerd's shims, the pods' processes) killed, every mount below the run directory unmounted, the kubelet's pod
# cgroups removed, the few host paths it touched put back, and the run directory deleted. Safe to run twice, and
# after a start that failed halfway.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

if [[ ! -d "$RUN" ]]; then
	log "no cluster at $RUN"
	exit 0
fi
declare -A host=()
if [[ -f "$RUN/host-state" ]]; then
	while IFS='=' read -r key value; do host[$key]="$value"; done <"$RUN/host-state"
fi

# kill_wait SIGNAL SECONDS PID...: signals the processes and waits until they are gone.
kill_wait() {
	local sig="$1" deadline=$((SECONDS + $2)) pid alive
	shift 2
	(($# == 0)) && return 0
	kill "-$sig" "$@" 2>/dev/null
	while ((SECONDS <= deadline)); do
		alive=0
		for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
		((alive)) || return 0
		sleep 0.2
	done
	return 1
}
daemon_pid() { # the pid from a pid file, if that process still runs from this cluster's command line
	local file="$RUN/pids/$1.pid" pid
	[[ -f "$file" ]] || return 0
	pid="$(<"$file")"
	tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$RUN/" && echo "$pid"
	return 0
}

# 1. The kubelet first, so it restarts nothing while the rest goes.
kill_wait TERM 10 $(daemon_pid kubelet) || kill_wait KILL 5 $(daemon_pid kubelet)

# 2. The pods' processes: everything in the kubelet's pod cgroups (the sandboxes and the containers). Killed rather
#    than stopped through the runtime: the test is over and nothing of theirs needs a graceful end (carnx pins its
#    attachments; the test cleans those up itself).
pod_pids() {
	local cg
	while read -r cg; do cat "$cg/cgroup.procs" 2>/dev/null; done < <(kubepods_cgroups) | sort -u
}
for _ in 1 2 3; do
	mapfile -t pids < <(pod_pids)
	((${#pids[@]} == 0)) && break
	kill_wait KILL 10 "${pids[@]}"
done

# 3. containerd and its shims (their command lines name the socket under $RUN).
kill_wait TERM 10 $(daemon_pid containerd) || kill_wait KILL 5 $(daemon_pid containerd)
mapfile -t shims < <(pids_of_run)
# Each shim listens on a socket in a directory containerd hard-codes (/run/containerd/s) and named by a hash:
# take the names from the shims themselves before they go.
shim_sockets=()
for pid in "${shims[@]}"; do
	shim_sockets+=($(ss -xlpn 2>/dev/null | grep -F "pid=$pid," | grep -oE "$SHIM_SOCKET_DIR/[0-9a-f]+" || true))
done
kill_wait TERM 5 "${shims[@]}" || kill_wait KILL 5 "${shims[@]}"

# 4. The control plane.
for d in kube-scheduler kube-controller-manager kube-apiserver etcd; do
	kill_wait TERM 15 $(daemon_pid "$d") || kill_wait KILL 5 $(daemon_pid "$d")
done
mapfile -t rest < <(pids_of_run)
if ((${#rest[@]} > 0)); then
	log "killing what is left of the cluster: ${rest[*]}"
	kill_wait KILL 5 "${rest[@]}"
fi

# 5. Mounts below the run directory, deepest first: containers' rootfs overlays, sandbox /dev/shm, the kubelet's pod
#    volumes (tmpfs for Secrets and projected tokens) and the kubelet's rshared bind of its own root. A mount that a
#    leftover process still holds gets a lazy unmount, so the directory can go either way.
for _ in 1 2 3; do
	mapfile -t mounts < <(findmnt -rn -o TARGET | grep -F -- "$RUN/" | sort -r)
	mounts+=($(findmnt -rn -o TARGET | grep -Fx -- "$RUN"))
	((${#mounts[@]} == 0)) && break
	for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
done

# 6. The pod cgroups, leaves first (only empty cgroups can be removed).
while read -r cg; do rmdir "$cg" 2>/dev/null || log "could not remove cgroup $cg"; done < <(kubepods_cgroups)

# 7. Host paths outside the run directory.
if [[ "${host[bpffs_propagation]:-}" == private && "$(findmnt -n -o PROPAGATION /sys/fs/bpf)" != private ]]; then
	mount --make-private /sys/fs/bpf
fi
# The shims' sockets, and their directory if this cluster created it (a containerd of the machine's own keeps its).
rm -f "${shim_sockets[@]}"
if [[ "${host[run_containerd_existed]:-1}" == 0 ]]; then
	rm -rf /run/containerd
fi
# The kubelet's links to the pod logs under $RUN (/var/log/containers is a constant in the kubelet too); the
# directory only if it made it.
find /var/log/containers -maxdepth 1 -type l -lname "$RUN/*" -delete 2>/dev/null
if [[ "${host[var_log_containers_existed]:-1}" == 0 ]]; then
	rmdir /var/log/containers 2>/dev/null
fi

# The kubelet's device-plugin socket: its directory is a constant in the kubelet, whatever its root dir.
if [[ "${host[var_lib_kubelet_existed]:-1}" == 0 ]]; then
	rm -rf /var/lib/kubelet
elif [[ "${host[device_plugins_existed]:-1}" == 0 ]]; then
	rm -rf /var/lib/kubelet/device-plugins
fi

rm -rf "$RUN"
if [[ -e "$RUN" ]]; then
	log "could not remove $RUN: $(findmnt -rn -o TARGET | grep -F -- "$RUN" | tr '\n' ' ')"
	exit 1
fi
log "stopped; $RUN removed"
