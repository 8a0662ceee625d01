# Versions of the Kubernetes test bed (sourced by build.sh, up.sh, down.sh).
# See ../../docs/kubernetes.md. Changing one gives a new cache directory.
RH_KWOK_VERSION="${RH_KWOK_VERSION:-v0.8.0}"
RH_METRICS_SERVER_VERSION="${RH_METRICS_SERVER_VERSION:-v0.9.0}"
RH_ETCD_VERSION="${RH_ETCD_VERSION:-v3.6.16}"
RH_K8S_VERSION="${RH_K8S_VERSION:-v1.37.2}"
RH_GO_MIN="1.26"
RH_BINARIES=(kwok kwokctl metrics-server etcd kube-apiserver kube-controller-manager kube-scheduler)

rh_versions_key() {
    echo "kwok-${RH_KWOK_VERSION}_ms-${RH_METRICS_SERVER_VERSION}_etcd-${RH_ETCD_VERSION}_k8s-${RH_K8S_VERSION}"
}

rh_bin_dir() {
    echo "${HARNESS_K8S_CACHE:-/var/cache/resilience-harness/k8s}/$(rh_versions_key)/bin"
}
