#!/usr/bin/env bash
# A single-node Kubernetes cluster of real components as local processes, for the e2e tier on machines
# with no Docker engine (docs/e2e.md): etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# a kubelet on Debian's containerd + runc (cgroupfs, cgroup v1), a bridge CNI, kube-proxy (iptables) and
# CoreDNS. Every address is on this machine: the node IP sits on the loopback device, pods on a bridge that
# the host routes to, and nothing from the pod network is forwarded anywhere else.
#
#   bash tests/cluster/cluster.sh up       # idempotent: tears down any earlier cluster first
#   bash tests/cluster/cluster.sh down     # leaves no processes, mounts, veths, bridges or chains
#   bash tests/cluster/cluster.sh status | logs [component]
#
# Config, PKI, etcd data and logs live in <repo>/.build/cluster (the admin kubeconfig is
# .build/cluster/kubeconfig); the node's runtime state in $NODE_ROOT and $RUN_ROOT, fixed paths, so a
# `down` from any checkout cleans up what an `up` from another left. containerd's image store is kept
# across runs (it is a cache); everything else is made anew by `up`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"

NODE_NAME=dynoline-node
NODE_IP=10.203.0.1
NODE_LABEL=lo:dynoline
POD_CIDR=10.244.0.0/24
POD_GATEWAY=10.244.0.1
POD_BRIDGE=cni0
SERVICE_CIDR=10.96.0.0/24
SERVICE_API_IP=10.96.0.1
CLUSTER_DOMAIN=cluster.local
APISERVER_PORT=6443
ETCD_CLIENT_PORT=23790
ETCD_PEER_PORT=23800
KCM_PORT=10357
SCHEDULER_PORT=10359
COREDNS_HEALTH=127.0.0.1:18080
COREDNS_READY=127.0.0.1:18181
LOCAL_PVS=${DYNOLINE_CLUSTER_PVS:-12}

STATE="${DYNOLINE_CLUSTER_DIR:-$repo_root/.build/cluster}"
NODE_ROOT=/var/lib/dynoline-node
RUN_ROOT=/run/dynoline
CONTAINERD_SOCK="$RUN_ROOT/containerd/containerd.sock"
KUBELET_ROOT="$NODE_ROOT/kubelet"
PV_ROOT="$NODE_ROOT/pv"
CNI_CONF_DIR="$RUN_ROOT/cni/net.d"
CNI_BIN_DIR=/usr/lib/cni
PIDS="$RUN_ROOT/pids"
SYSCTL_SAVED="$NODE_ROOT/sysctl.saved"
CHAIN=DYNOLINE-ISOLATION
# Stopped in this order by `down`: the node first, so no pod outlives its kubelet.
COMPONENTS=(kubelet kube-proxy coredns kube-scheduler kube-controller-manager kube-apiserver etcd containerd)

# shellcheck source=tests/cluster/lib.sh
source "$here/lib.sh"

log() { printf 'cluster: %s\n' "$*" >&2; }
die() {
    printf 'cluster: error: %s\n' "$*" >&2
    exit 1
}

# ------------------------------------------------------------------------------------------ binaries

binaries() {
    ensure_packages containerd runc containernetworking-plugins iptables conntrack openssl iproute2 kmod curl
    local bin_dir
    bin_dir="$(K8S_TOOLS_NODE=1 bash "$repo_root/tests/k8s-tools/build.sh" | tail -n 1)"
    [[ -d "$bin_dir" ]] || die "tests/k8s-tools/build.sh printed no bin dir"
    BIN="$bin_dir"
    local b
    for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl coredns crictl; do
        [[ -x "$BIN/$b" ]] || die "$BIN/$b is missing (tests/k8s-tools/build.sh with K8S_TOOLS_NODE=1 builds it)"
    done
}

# ------------------------------------------------------------------------------------------------ PKI

# issue NAME CN ORG KIND [SAN]: an ECDSA key and a certificate signed by the cluster CA.
# KIND is client, server or both; ORG may be empty.
issue() {
    local name="$1" cn="$2" org="$3" kind="$4" san="${5:-}" pki="$STATE/pki" usage subj
    case "$kind" in
    client) usage=clientAuth ;;
    server) usage=serverAuth ;;
    both) usage=serverAuth,clientAuth ;;
    esac
    subj="/CN=$cn"
    [[ -n "$org" ]] && subj="/O=$org$subj"
    openssl ecparam -name prime256v1 -genkey -noout -out "$pki/$name.key" 2>/dev/null
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$usage"
        [[ -n "$san" ]] && echo "subjectAltName=$san"
    } >"$pki/$name.ext"
    openssl req -new -key "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
    openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
        -days 30 -sha256 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
    rm -f "$pki/$name.csr" "$pki/$name.ext"
}

# kubeconfig NAME: a kubeconfig for the identity in pki/NAME.{crt,key}.
kubeconfig() {
    local name="$1" pki="$STATE/pki" out="$STATE/$1.kubeconfig"
    [[ "$name" == admin ]] && out="$STATE/kubeconfig"
    cat >"$out" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: dynoline-local
  cluster:
    server: https://$NODE_IP:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 <"$pki/$name.crt")
    client-key-data: $(base64 -w0 <"$pki/$name.key")
contexts:
- name: dynoline-local
  context: {cluster: dynoline-local, user: $name}
current-context: dynoline-local
EOF
    chmod 600 "$out"
}

make_pki() {
    local pki="$STATE/pki"
    mkdir -p "$pki"
    chmod 700 "$pki"
    openssl ecparam -name prime256v1 -genkey -noout -out "$pki/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=dynoline-local-ca" -days 30 -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$pki/ca.crt" 2>/dev/null
    openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
    local api_san="IP:$NODE_IP,IP:$SERVICE_API_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes"
    api_san+=",DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN"
    issue apiserver kube-apiserver "" server "$api_san"
    issue apiserver-kubelet-client kube-apiserver-kubelet-client system:masters client
    issue kubelet-serving "system:node:$NODE_NAME" system:nodes server "IP:$NODE_IP,DNS:$NODE_NAME"
    issue admin dynoline-admin system:masters client
    issue kube-controller-manager system:kube-controller-manager "" client
    issue kube-scheduler system:kube-scheduler "" client
    issue kubelet "system:node:$NODE_NAME" system:nodes client
    issue kube-proxy system:kube-proxy "" client
    issue coredns system:coredns "" client
    local who
    for who in admin kube-controller-manager kube-scheduler kubelet kube-proxy coredns; do kubeconfig "$who"; done
}

# ------------------------------------------------------------------------------------------ processes

# start NAME ARGV...: a daemon in its own session, its output in logs/NAME.log, its pid in $PIDS.
start() {
    local name="$1"
    shift
    setsid "$@" </dev/null >>"$STATE/logs/$name.log" 2>&1 &
    echo $! >"$PIDS/$name.pid"
}

alive() {
    local pid
    pid="$(cat "$PIDS/$1.pid" 2>/dev/null)" || return 1
    kill -0 "$pid" 2>/dev/null
}

# wait_for WHAT SECONDS COMPONENT COMMAND...: poll COMMAND; fail with the component's log tail.
wait_for() {
    local what="$1" seconds="$2" component="$3" deadline
    shift 3
    deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if ! alive "$component"; then
            tail -n 30 "$STATE/logs/$component.log" >&2 || true
            die "$component exited while waiting for $what (log: $STATE/logs/$component.log)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 30 "$STATE/logs/$component.log" >&2 || true
            die "timed out after ${seconds}s waiting for $what (log: $STATE/logs/$component.log)"
        fi
        sleep 0.5
    done
}

stop_component() {
    local name="$1" pid i
    pid="$(cat "$PIDS/$name.pid" 2>/dev/null)" || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDS/$name.pid"
}

kubectl_admin() { "$BIN/kubectl" --kubeconfig "$STATE/kubeconfig" "$@"; }
crictl_node() { "$BIN/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" --timeout 30s "$@"; }

# ------------------------------------------------------------------------------------------- network

set_sysctl() {
    local key="$1" value="$2" path
    path="/proc/sys/${key//.//}"
    [[ -e "$path" ]] || die "sysctl $key is not available on this kernel ($path missing)"
    if ! grep -q "^$key=" "$SYSCTL_SAVED" 2>/dev/null; then
        echo "$key=$(cat "$path")" >>"$SYSCTL_SAVED"
    fi
    echo "$value" >"$path"
}

network_up() {
    [[ -e /proc/sys/net/bridge ]] || modprobe br_netfilter 2>/dev/null || true
    set_sysctl net.ipv4.ip_forward 1
    # Pod-to-Service traffic answered from the same bridge must pass conntrack to be un-DNATed.
    set_sysctl net.bridge.bridge-nf-call-iptables 1
    set_sysctl net.bridge.bridge-nf-call-ip6tables 1
    set_sysctl net.ipv4.conf.all.route_localnet 0
    # On the loopback device (this kernel has no dummy links): local to the host, reached by pods
    # through their gateway, never answered on eth0's network.
    ip addr add "$NODE_IP/32" dev lo label "$NODE_LABEL"
    # Service IPs only ever mean something after kube-proxy's DNAT: never route them off the machine.
    ip route add blackhole "$SERVICE_CIDR"
    # Nothing from the pod network is forwarded off this machine (Service traffic is DNATed to pods first).
    iptables -N "$CHAIN"
    iptables -A "$CHAIN" -s "$POD_CIDR" ! -o "$POD_BRIDGE" -j DROP
    iptables -A "$CHAIN" -d "$POD_CIDR" ! -i "$POD_BRIDGE" -j DROP
    iptables -I FORWARD 1 -j "$CHAIN"
    mkdir -p "$CNI_CONF_DIR"
    cat >"$CNI_CONF_DIR/10-dynoline.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "dynoline",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$POD_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$NODE_ROOT/cni-ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

# Chains whose names we (kube-proxy, the kubelet, CNI, this script) own, in every table and family.
remove_chains() {
    local cmd table rule chain
    for cmd in iptables ip6tables; do
        command -v "$cmd" >/dev/null || continue
        for table in filter nat mangle raw; do
            "$cmd" -t "$table" -S >/dev/null 2>&1 || continue
            while IFS= read -r rule; do
                eval "$cmd -t $table ${rule/#-A/-D}" 2>/dev/null || true
            done < <("$cmd" -t "$table" -S | grep -E '^-A [A-Z]+ .*-j (KUBE|CNI|DYNOLINE)-' || true)
            mapfile -t chains < <("$cmd" -t "$table" -S | awk '$1 == "-N" && $2 ~ /^(KUBE|CNI|DYNOLINE)-/ {print $2}')
            for chain in "${chains[@]}"; do "$cmd" -t "$table" -F "$chain" 2>/dev/null || true; done
            for chain in "${chains[@]}"; do "$cmd" -t "$table" -X "$chain" 2>/dev/null || true; done
        done
    done
    if command -v nft >/dev/null; then
        for table in "ip kube-proxy" "ip6 kube-proxy"; do
            # shellcheck disable=SC2086
            nft delete table $table 2>/dev/null || true
        done
    fi
}

network_down() {
    local link
    for link in $(ip -o link show master "$POD_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
        ip link del "$link" 2>/dev/null || true
    done
    ip link del "$POD_BRIDGE" 2>/dev/null || true
    ip addr del "$NODE_IP/32" dev lo 2>/dev/null || true
    ip route del blackhole "$SERVICE_CIDR" 2>/dev/null || true
    if [[ -n "${BIN:-}" && -x "$BIN/kube-proxy" ]]; then
        "$BIN/kube-proxy" --cleanup >>"$STATE/logs/kube-proxy-cleanup.log" 2>&1 || true
    fi
    remove_chains
    if [[ -f "$SYSCTL_SAVED" ]]; then
        local key value
        while IFS='=' read -r key value; do
            echo "$value" >"/proc/sys/${key//.//}" 2>/dev/null || true
        done <"$SYSCTL_SAVED"
        rm -f "$SYSCTL_SAVED"
    fi
}

# ------------------------------------------------------------------------------------------ components

start_containerd() {
    mkdir -p "$RUN_ROOT/containerd" "$NODE_ROOT/containerd"
    cat >"$STATE/containerd.toml" <<EOF
version = 2
root = "$NODE_ROOT/containerd"
state = "$RUN_ROOT/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_ROOT/containerd-opt"

[plugins."io.containerd.grpc.v1.cri"]
  # Built locally (tests/cluster/images.sh): there is no registry to pull registry.k8s.io/pause from.
  sandbox_image = "docker.io/library/dynoline-pause:local"
  # Root here lacks CAP_SYS_RESOURCE: without this every sandbox fails in runc with
  # "can't get final child's PID from pipe: EOF" (it may not lower oom_score_adj).
  restrict_oom_score_adj = true
  # The kernel has no hugetlb cgroup.
  disable_hugetlb_controller = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$CNI_CONF_DIR"
EOF
    start containerd containerd --config "$STATE/containerd.toml"
    wait_for "containerd's CRI" 60 containerd crictl_node info
    # Sandboxes a killed run left in containerd's metadata would be recovered by the CRI plugin.
    crictl_node rmp --all --force >/dev/null 2>&1 || true
}

start_etcd() {
    local url="http://127.0.0.1:$ETCD_CLIENT_PORT" peer="http://127.0.0.1:$ETCD_PEER_PORT"
    start etcd "$BIN/etcd" --name=dynoline-node --data-dir="$STATE/etcd" \
        --listen-client-urls="$url" --advertise-client-urls="$url" \
        --listen-peer-urls="$peer" --initial-advertise-peer-urls="$peer" \
        --initial-cluster="dynoline-node=$peer" --initial-cluster-state=new \
        --unsafe-no-fsync=true --log-level=warn
    wait_for "etcd /health" 60 etcd curl -fsS "$url/health"
}

start_apiserver() {
    local pki="$STATE/pki"
    start kube-apiserver "$BIN/kube-apiserver" \
        --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
        --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port="$APISERVER_PORT" \
        --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
        --client-ca-file="$pki/ca.crt" \
        --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
        --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
        --kubelet-certificate-authority="$pki/ca.crt" \
        --kubelet-preferred-address-types=InternalIP \
        --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
        --service-account-issuer="https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
        --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
        --service-cluster-ip-range="$SERVICE_CIDR" --allow-privileged=true \
        --shutdown-watch-termination-grace-period=2s \
        --cert-dir="$STATE/apiserver-certs"
    wait_for "kube-apiserver /readyz" 120 kube-apiserver kubectl_admin get --raw /readyz
}

start_controllers() {
    local pki="$STATE/pki" kc="$STATE/kube-controller-manager.kubeconfig" sc="$STATE/kube-scheduler.kubeconfig"
    start kube-controller-manager "$BIN/kube-controller-manager" \
        --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
        --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --cert-dir="$STATE/kcm-certs" \
        --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
        --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
        --service-cluster-ip-range="$SERVICE_CIDR" --use-service-account-credentials=true \
        --leader-elect=false --controllers='*'
    start kube-scheduler "$BIN/kube-scheduler" \
        --kubeconfig="$sc" --authentication-kubeconfig="$sc" --authorization-kubeconfig="$sc" \
        --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --leader-elect=false
    wait_for "kube-controller-manager /healthz" 60 kube-controller-manager \
        curl -fsSk "https://127.0.0.1:$KCM_PORT/healthz"
    wait_for "kube-scheduler /healthz" 60 kube-scheduler curl -fsSk "https://127.0.0.1:$SCHEDULER_PORT/healthz"
    wait_for "the default ServiceAccount (controllers running)" 60 kube-controller-manager \
        kubectl_admin -n default get serviceaccount default
}

start_kubelet() {
    mkdir -p "$KUBELET_ROOT" "$NODE_ROOT/pod-logs" "$NODE_ROOT/kubelet-plugins"
    # Pods resolve through CoreDNS only: nothing outside the cluster has a name here.
    echo "nameserver $NODE_IP" >"$STATE/resolv.conf"
    cat >"$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $STATE/pki/kubelet-serving.crt
tlsPrivateKeyFile: $STATE/pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $STATE/pki/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
# This machine is cgroup v1 (maintenance mode upstream, still supported when asked for).
failCgroupV1: false
failSwapOn: false
clusterDNS: [$NODE_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: $STATE/resolv.conf
podLogsDir: $NODE_ROOT/pod-logs
volumePluginDir: $NODE_ROOT/kubelet-plugins
serializeImagePulls: false
maxPods: 60
# Tiny thresholds: a busy CI disk must not evict the test's pods or collect its local images.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
    start kubelet "$BIN/kubelet" --config="$STATE/kubelet.yaml" --kubeconfig="$STATE/kubelet.kubeconfig" \
        --root-dir="$KUBELET_ROOT" --cert-dir="$STATE/kubelet-certs" \
        --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1
    wait_for "node $NODE_NAME to register" 120 kubelet kubectl_admin get node "$NODE_NAME"
    wait_for "node $NODE_NAME Ready" 120 kubelet \
        kubectl_admin wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s
}

start_kube_proxy() {
    cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
nodePortAddresses: [$NODE_IP/32]
iptables: {localhostNodePorts: false}
# 0: leave the host's conntrack sysctls as they are.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
    start kube-proxy "$BIN/kube-proxy" --config="$STATE/kube-proxy.yaml"
    wait_for "kube-proxy /healthz" 60 kube-proxy curl -fsS http://127.0.0.1:10256/healthz
}

start_coredns() {
    cat >"$STATE/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    health $COREDNS_HEALTH
    ready $COREDNS_READY
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $STATE/coredns.kubeconfig dynoline-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
}
EOF
    start coredns "$BIN/coredns" -conf "$STATE/Corefile"
    wait_for "CoreDNS /ready" 60 coredns curl -fsS "http://$COREDNS_READY/ready"
}

bootstrap_objects() {
    local pvs="" i
    for i in $(seq 0 $((LOCAL_PVS - 1))); do
        mkdir -p "$PV_ROOT/pv$i"
        # Any pod's uid may own it (fsGroup also applies to local volumes).
        chmod 1777 "$PV_ROOT/pv$i"
        pvs+="
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: local-pv$i, labels: {app.kubernetes.io/part-of: dynoline-local}}
spec:
  capacity: {storage: 2Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: standard
  volumeMode: Filesystem
  local: {path: $PV_ROOT/pv$i}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - {key: kubernetes.io/hostname, operator: In, values: [$NODE_NAME]}"
    done
    kubectl_admin apply -f "$here/manifests/bootstrap.yaml" >&2
    printf '%s\n' "$pvs" | kubectl_admin apply -f - >/dev/null
}

# -------------------------------------------------------------------------------------------- verbs

unmount_under() {
    local prefix="$1" target
    [[ -e "$prefix" ]] || return 0
    while IFS= read -r target; do
        umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null || true
    done < <(awk -v p="$prefix" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r)
}

down() {
    mkdir -p "$PIDS" "$STATE/logs"
    BIN="${BIN:-$(ls -d "$repo_root"/.build/k8s/v* 2>/dev/null | tail -n 1)}"
    stop_component kubelet
    # Pods go through the CRI, so CNI tears down each pod's veth and address.
    if alive containerd && [[ -x "$BIN/crictl" ]]; then
        crictl_node rmp --all --force >/dev/null 2>&1 || true
    fi
    local name
    for name in "${COMPONENTS[@]}"; do stop_component "$name"; done
    # Shims that outlived containerd (a killed run).
    pkill -KILL -f "containerd-shim.*-address $CONTAINERD_SOCK" 2>/dev/null || true
    unmount_under "$KUBELET_ROOT"
    unmount_under "$NODE_ROOT/containerd"
    unmount_under "$RUN_ROOT"
    local ns
    for ns in /run/netns/cni-*; do
        [[ -e "$ns" ]] || continue
        umount "$ns" 2>/dev/null || umount -l "$ns" 2>/dev/null || true
        rm -f "$ns"
    done
    network_down
    find /var/log/containers -maxdepth 1 -lname "$NODE_ROOT/*" -delete 2>/dev/null || true
    rm -rf "$KUBELET_ROOT" "$NODE_ROOT/cni-ipam" "$PV_ROOT" "$NODE_ROOT/pod-logs" "$NODE_ROOT/kubelet-plugins" "$RUN_ROOT"
    rm -rf "$STATE/etcd"
    log "down: no cluster processes, mounts, links or chains left"
}

up() {
    [[ $EUID -eq 0 ]] || die "needs root (a kubelet, containerd, bridges and iptables)"
    binaries
    down
    mkdir -p "$STATE/logs" "$PIDS" "$NODE_ROOT"
    rm -rf "$STATE/pki" "$STATE"/*.kubeconfig "$STATE/kubeconfig" "$STATE"/logs/*.log
    local start_time=$SECONDS
    make_pki
    network_up
    start_containerd
    start_etcd
    start_apiserver
    start_controllers
    bootstrap_objects
    start_coredns
    start_kubelet
    start_kube_proxy
    log "up in $((SECONDS - start_time))s: node $NODE_NAME Ready; KUBECONFIG=$STATE/kubeconfig"
}

status() {
    local name
    for name in "${COMPONENTS[@]}"; do
        if alive "$name"; then echo "$name: running (pid $(cat "$PIDS/$name.pid"))"; else echo "$name: stopped"; fi
    done
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
logs)
    if [[ -n "${2:-}" ]]; then tail -n 200 "$STATE/logs/$2.log"; else tail -n 20 "$STATE"/logs/*.log; fi
    ;;
*)
    echo "usage: $0 up|down|status|logs [component]" >&2
    exit 2
    ;;
esac
