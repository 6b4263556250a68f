#!/usr/bin/env bash
# Installs the Debian packages and builds the Go tools the project runs against, into a cache outside
# the clone keyed by the pinned versions. Prints the bin directory on the last line of stdout.
# A second run finds the cache and returns in a moment; a missing cache is simply rebuilt.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${DATACLOUD_TOOLS_CACHE:-$HOME/.cache/datacloud-tools}"
log() { echo "[tools] $*" >&2; }

debian_packages=(etcd-server prometheus prometheus-alertmanager rclone chromium fonts-wqy-zenhei
  # The dev stack's node (devstack/node.py) and the images it runs (devstack/image.py).
  containerd runc containernetworking-plugins iptables busybox-static umoci mmdebstrap)
missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  # The packaged services are not wanted running; the project starts its own on loopback ports.
  for svc in etcd prometheus prometheus-alertmanager prometheus-node-exporter; do
    (systemctl stop "$svc" || service "$svc" stop || pkill -x "${svc#prometheus-}") >/dev/null 2>&1 || true
  done
fi

k8s_sum="$(cat "$here/k8s/go.mod" "$here/k8s/go.sum" | sha256sum | cut -c1-12)"  # contents only: the same key from every clone
k8s_dir="$cache/kubernetes-$KUBERNETES_VERSION-$k8s_sum"
if [[ ! -x "$k8s_dir/kube-apiserver" || ! -x "$k8s_dir/kube-controller-manager" || ! -x "$k8s_dir/kubectl" ]]; then
  log "building kube-apiserver, kube-controller-manager, kubectl $KUBERNETES_VERSION (cold: many minutes)"
  tmp="$k8s_dir.tmp.$$"
  mkdir -p "$tmp"
  (cd "$here/k8s" && CGO_ENABLED=0 go build -trimpath -o "$tmp/" \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2) -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl) >&2
  rm -rf "$k8s_dir"; mv "$tmp" "$k8s_dir"
fi

# The node's kubelet and kube-scheduler: a module of their own (tools/k8s-node), so that its cache entry is
# separate and adding them did not change the control plane's key.
node_sum="$(cat "$here/k8s-node/go.mod" "$here/k8s-node/go.sum" | sha256sum | cut -c1-12)"  # content only, not the path
node_dir="$cache/kubernetes-node-$KUBERNETES_VERSION-$node_sum"
if [[ ! -x "$node_dir/kubelet" || ! -x "$node_dir/kube-scheduler" ]]; then
  log "building kubelet, kube-scheduler $KUBERNETES_VERSION"
  tmp="$node_dir.tmp.$$"
  mkdir -p "$tmp"
  (cd "$here/k8s-node" && CGO_ENABLED=0 go build -trimpath -o "$tmp/" \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-scheduler) >&2
  rm -rf "$node_dir"; mv "$tmp" "$node_dir"
fi

go_install() {  # name module version [ldflags]
  local dir="$cache/$1-$3"
  if [[ ! -x "$dir/$1" ]]; then
    log "building $1 $3"
    mkdir -p "$dir.tmp.$$"
    GOBIN="$dir.tmp.$$" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w ${4:-}" "$2@$3" >&2
    rm -rf "$dir"; mv "$dir.tmp.$$" "$dir"
  fi
  echo "$dir"
}
vgw_dir="$(go_install versitygw github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION")"
helm_minor="$(echo "$HELM_VERSION" | cut -d. -f2)"
k8s_minor="$(echo "$KUBERNETES_VERSION" | cut -d. -f2)"
helm_flags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor \
-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor"
helm_dir="$(go_install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "$helm_flags")"
: "$helm_minor"

# The operator image's base (Debian from mmdebstrap + the project's Python dependencies), which the tests
# that run the operator on the dev node build their image on (operator/datacloud/devstack/image.py).
log "operator image base: $(PYTHONPATH="$here/../operator" python3 -m datacloud.devstack.image base)"

bin="$cache/bin"
mkdir -p "$bin"
for f in "$k8s_dir"/kube-apiserver "$k8s_dir"/kube-controller-manager "$k8s_dir"/kubectl \
         "$node_dir"/kubelet "$node_dir"/kube-scheduler \
         "$vgw_dir"/versitygw "$helm_dir"/helm /usr/bin/etcd /usr/bin/promtool /usr/bin/prometheus /usr/bin/rclone; do
  ln -sf "$f" "$bin/$(basename "$f")"
done
# Benchmark peers only (`make bench`), never needed by the tests: MinIO's client for the sync bench.
if [[ "${1:-}" == "--bench" ]]; then
  mc_dir="$(go_install mc github.com/minio/mc "$MC_VERSION")"
  ln -sf "$mc_dir/mc" "$bin/mc"
fi
log "tools ready in $bin"
echo "$bin"
