#!/usr/bin/env bash
# Start a one-node Kubernetes cluster on this machine for the deploy tests: etcd, kube-apiserver,
# kube-controller-manager and kube-scheduler on 127.0.0.1, containerd with a sandbox image built here, and a kubelet
# that registers this machine as node $NODE. No kube-proxy, no CNI: the node can run hostNetwork pods (the carnx
# DaemonSet), and reports NetworkReady=false for anything else.
#
# Everything lives under the run directory (lib.sh); the last stdout line is the path of its env file, which names
# the kubeconfig, the binaries and containerd's socket:
#   source "$(test/tools/cluster/start.sh | tail -n1)"; kubectl get nodes
# test/tools/cluster/stop.sh undoes all of it, also after a start that failed halfway.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

for tool in containerd containerd-shim-runc-v2 runc ctr openssl curl gcc findmnt; do
	command -v "$tool" >/dev/null || { log "$tool not found (test/tools/install-test-deps.sh installs it)"; exit 1; }
done
if [[ -e "$RUN" ]]; then
	log "$RUN exists: a cluster is running or was not stopped; run $here/stop.sh first"
	exit 1
fi
if [[ "$(findmnt -n -o FSTYPE /sys/fs/bpf)" != bpf ]]; then
	# The chart mounts the node's bpffs (hostPath, type Directory); a node without one is the node's problem.
	log "/sys/fs/bpf is not a bpf filesystem: mount -t bpf -o mode=0700 bpf /sys/fs/bpf (xdp/install-build-deps.sh does)"
	exit 1
fi
if [[ -n "$(kubepods_cgroups)" ]]; then
	log "kubepods cgroups exist already: another kubelet runs on this machine, and two cannot share them"
	exit 1
fi
for port in "$APISERVER_PORT" "$ETCD_PORT" "$ETCD_PEER_PORT" "$KUBELET_PORT" "$KUBELET_HEALTHZ_PORT" \
	"$CONTROLLER_MANAGER_PORT" "$SCHEDULER_PORT"; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		log "127.0.0.1:$port is taken; set the CARNX_CLUSTER_*_PORT variables (test/tools/cluster/lib.sh)"
		exit 1
	fi
done

BIN="$(dirname "$(bash "$here/build.sh" | tail -n1)")"
started=$SECONDS
# On failure, leave nothing running: stop.sh works from whatever was created so far.
trap 'status=$?; if ((status != 0)); then log "failed; logs are in $RUN/logs; stopping"; for f in "$RUN"/logs/*.log; do [[ -f "$f" ]] && { echo "== $f" >&2; tail -n 15 "$f" >&2; }; done; bash "$here/stop.sh" >&2 || true; fi' EXIT

mkdir -p "$RUN"/{pki,logs,pids,etcd,containerd,kubelet,image}
chmod 700 "$RUN"
# What is outside the run directory and may change: put back by stop.sh.
{
	[[ -e /run/containerd ]] && echo "run_containerd_existed=1" || echo "run_containerd_existed=0"
	[[ -e /var/log/containers ]] && echo "var_log_containers_existed=1" || echo "var_log_containers_existed=0"
	[[ -e /var/lib/kubelet ]] && echo "var_lib_kubelet_existed=1" || echo "var_lib_kubelet_existed=0"
	[[ -e /var/lib/kubelet/device-plugins ]] && echo "device_plugins_existed=1" || echo "device_plugins_existed=0"
	echo "bpffs_propagation=$(findmnt -n -o PROPAGATION /sys/fs/bpf 2>/dev/null || true)"
} >"$RUN/host-state"

# --- Certificates: one CA for everything; every client authenticates with a certificate it signed. -----------------
pki="$RUN/pki"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=carnx-test-cluster-ca" \
	-keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
# cert NAME SUBJECT [SANS]: a key and a certificate signed by the CA.
cert() {
	local ext="$pki/$1.ext"
	{
		echo "basicConstraints=CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		if [[ -n "${3:-}" ]]; then
			echo "extendedKeyUsage=serverAuth,clientAuth"
			echo "subjectAltName=$3"
		else
			echo "extendedKeyUsage=clientAuth"
		fi
	} >"$ext"
	openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
	openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
		-extfile "$ext" -out "$pki/$1.crt" 2>/dev/null
}
cert apiserver "/CN=kube-apiserver" "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default"
# The apiserver's identity towards the kubelet (logs, exec): a member of system:masters.
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
cert admin "/O=system:masters/CN=carnx-test-admin"
# The built-in RBAC roles and the Node authorizer know these names.
cert controller-manager "/CN=system:kube-controller-manager"
cert scheduler "/CN=system:kube-scheduler"
cert kubelet "/O=system:nodes/CN=system:node:$NODE"
cert kubelet-serving "/CN=$NODE" "IP:127.0.0.1,DNS:$NODE"
# Service account tokens: the controller-manager signs, the apiserver verifies.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key" 2>/dev/null
openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

# kubeconfig NAME CERT: a kubeconfig for the apiserver on loopback with that client certificate.
kubeconfig() {
	cat >"$RUN/$1.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
  - name: carnx-test
    cluster:
      server: https://127.0.0.1:$APISERVER_PORT
      certificate-authority: $pki/ca.crt
users:
  - name: $2
    user:
      client-certificate: $pki/$2.crt
      client-key: $pki/$2.key
contexts:
  - name: carnx-test
    context: {cluster: carnx-test, user: $2}
current-context: carnx-test
KC
}
kubeconfig admin admin
kubeconfig controller-manager controller-manager
kubeconfig scheduler scheduler
kubeconfig kubelet kubelet

# run NAME ARGS...: a daemon in its own session (so a Ctrl-C on the caller does not reach it), logging to logs/.
run() {
	local name="$1"
	shift
	setsid "$@" </dev/null >"$RUN/logs/$name.log" 2>&1 &
	echo $! >"$RUN/pids/$name.pid"
}
# wait_for DAEMON SECONDS COMMAND...: polls until the command succeeds; gives up at once if the daemon exited.
wait_for() {
	local what="$1" deadline=$((SECONDS + $2))
	shift 2
	until "$@" >/dev/null 2>&1; do
		if ! kill -0 "$(<"$RUN/pids/$what.pid")" 2>/dev/null; then
			log "$what exited"
			return 1
		fi
		if ((SECONDS > deadline)); then
			log "timed out waiting for $what"
			return 1
		fi
		sleep 0.5
	done
}
kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# --- Control plane -------------------------------------------------------------------------------------------------
# The controller-manager and the kubelet would create the FlexVolume plugin directory in /usr/libexec (probing it):
# both get one under $RUN.
run etcd "$BIN/etcd" --name "$NODE" --data-dir "$RUN/etcd" \
	--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
	--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
	--initial-cluster "$NODE=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "" \
	--quota-backend-bytes 1073741824 --unsafe-no-fsync
wait_for etcd 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health"

# --endpoint-reconciler-type none: the "kubernetes" Service would advertise an address to pods, and nothing here
# reaches Services (no kube-proxy). The kubelet serves on loopback only, while its node address cannot be loopback
# (the kubelet refuses that), so `kubectl logs/exec` do not work: pod logs are files under $RUN/kubelet/pod-logs.
# InternalIP only: never a DNS lookup of the node name.
run kube-apiserver "$BIN/kube-apiserver" \
	--bind-address 127.0.0.1 --secure-port "$APISERVER_PORT" --advertise-address 127.0.0.1 \
	--etcd-servers "http://127.0.0.1:$ETCD_PORT" \
	--client-ca-file "$pki/ca.crt" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
	--kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
	--kubelet-preferred-address-types InternalIP \
	--service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
	--service-account-issuer https://kubernetes.default.svc.cluster.local \
	--service-cluster-ip-range 10.96.0.0/24 --endpoint-reconciler-type none \
	--authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
	--allow-privileged=true --profiling=false
wait_for kube-apiserver 90 kubectl get --raw /readyz

run kube-controller-manager "$BIN/kube-controller-manager" \
	--kubeconfig "$RUN/controller-manager.kubeconfig" \
	--authentication-kubeconfig "$RUN/controller-manager.kubeconfig" --authorization-kubeconfig "$RUN/controller-manager.kubeconfig" \
	--bind-address 127.0.0.1 --secure-port "$CONTROLLER_MANAGER_PORT" --cert-dir "$RUN/pki/controller-manager-serving" \
	--service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" --use-service-account-credentials=true \
	--cluster-name carnx-test --leader-elect=false --profiling=false \
	--flex-volume-plugin-dir "$RUN/controller-manager/volume-plugins"
run kube-scheduler "$BIN/kube-scheduler" \
	--kubeconfig "$RUN/scheduler.kubeconfig" \
	--authentication-kubeconfig "$RUN/scheduler.kubeconfig" --authorization-kubeconfig "$RUN/scheduler.kubeconfig" \
	--bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --cert-dir "$RUN/pki/scheduler-serving" \
	--leader-elect=false --profiling=false

# --- Container runtime ---------------------------------------------------------------------------------------------
# The sandbox ("pause") image: test/tools/cluster/pause.c, static, in a one-layer OCI image assembled here by hand.
img="$RUN/image"
mkdir -p "$img/rootfs" "$img/oci/blobs/sha256"
gcc -static -O2 -o "$img/rootfs/pause" "$here/pause.c"
blob() { # FILE -> moves it into the layout, prints "sha256:<hex> <size>"
	local sum size
	sum="$(sha256sum "$1" | cut -d' ' -f1)"
	size="$(stat -c %s "$1")"
	mv "$1" "$img/oci/blobs/sha256/$sum"
	echo "sha256:$sum $size"
}
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$img/rootfs" -cf "$img/layer.tar" pause
read -r layer layer_size < <(blob "$img/layer.tar")
printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/pause"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
	"$layer" >"$img/config.json"
read -r config config_size < <(blob "$img/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
	"$config" "$config_size" "$layer" "$layer_size" >"$img/manifest.json"
read -r manifest manifest_size < <(blob "$img/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
	"$manifest" "$manifest_size" "$PAUSE_IMAGE" "${PAUSE_IMAGE##*:}" >"$img/oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$img/oci/oci-layout"
tar -C "$img/oci" -cf "$img/pause.oci.tar" oci-layout index.json blobs

# Every path containerd would write outside its root and state is pointed into the run directory, or its plugin is
# off (opt: /opt/containerd; the snapshotters this machine lacks). runc's state dir comes from the runtime options.
cat >"$RUN/containerd/config.toml" <<TOML
version = 2
root = "$RUN/containerd/root"
state = "$RUN/containerd/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  # Sandboxes ask for oom_score_adj -998, and lowering it needs CAP_SYS_RESOURCE, which this machine's root lacks
  # (runc: "failed to update /proc/self/oom_score_adj: Permission denied"); never go below containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$RUN/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$RUN/cni/bin"
    conf_dir = "$RUN/cni/net.d"
TOML
run containerd containerd --config "$RUN/containerd/config.toml" --log-level info
ctr() { command ctr --address "$CONTAINERD_SOCK" "$@"; }
wait_for containerd 30 ctr version
ctr -n k8s.io images import --no-unpack "$img/pause.oci.tar" >&2
ctr -n k8s.io images ls -q | grep -qx "$PAUSE_IMAGE"

# --- Node ----------------------------------------------------------------------------------------------------------
# Pods mount bpffs with mountPropagation HostToContainer, which the runtime only allows on a shared or slave mount.
# systemd makes every mount shared at boot; without systemd as PID 1 (this machine) the mount stays private.
if [[ "$(findmnt -n -o PROPAGATION /sys/fs/bpf)" == private ]]; then
	mount --make-shared /sys/fs/bpf
fi

mkdir -p "$RUN/kubelet/root"
cat >"$RUN/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Loopback only: the apiserver is the only client, and it is on this machine.
address: 127.0.0.1
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $pki/ca.crt}
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
# cgroup v1 with cgroupfs: no systemd to delegate to. 1.34 still starts on cgroup v1; say so rather than rely on it.
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
# No iptables rules (KUBE-FIREWALL, KUBE-IPTABLES-HINT): nothing here uses them and they would outlive the cluster.
makeIPTablesUtilChains: false
podLogsDir: $RUN/kubelet/pod-logs
volumePluginDir: $RUN/kubelet/volume-plugins
clusterDomain: cluster.local
# A busy or small test machine must not evict the pods under test.
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# Frequent status updates: the tests wait on them.
nodeStatusUpdateFrequency: 2s
syncFrequency: 5s
fileCheckFrequency: 5s
YAML
run kubelet "$BIN/kubelet" --config "$RUN/kubelet/config.yaml" --kubeconfig "$RUN/kubelet.kubeconfig" \
	--root-dir "$RUN/kubelet/root" --cert-dir "$RUN/kubelet/pki" --hostname-override "$NODE" --v 2
wait_for kubelet 120 kubectl get node "$NODE"
# A namespace's default ServiceAccount is made by the controller-manager: once it is there, pods can be created.
wait_for kube-controller-manager 60 kubectl -n default get serviceaccount default

cat >"$RUN/env" <<ENV
# The test cluster (test/tools/cluster/start.sh): source this file.
export KUBECONFIG=$KUBECONFIG_ADMIN
export CARNX_CLUSTER_DIR=$RUN
export CARNX_CLUSTER_BIN=$BIN
export CARNX_CLUSTER_NODE=$NODE
export CARNX_CLUSTER_CONTAINERD=$CONTAINERD_SOCK
export CARNX_CLUSTER_POD_LOGS=$RUN/kubelet/pod-logs
export PATH=$BIN:\$PATH
ENV
log "node $NODE registered in $((SECONDS - started))s"
echo "$RUN/env"
