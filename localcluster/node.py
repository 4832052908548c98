"""The node: certificates, configuration files and the daemons, started in dependency order."""

from __future__ import annotations

import json
import socket
import ssl
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from localcluster import layout, processes
from localcluster.network import in_node, run
from localcluster.progress import ClusterError, step


def pki() -> Path:
    return layout.state_dir() / "pki"


def containerd_dir() -> Path:
    return layout.state_dir() / "containerd"


def containerd_socket() -> Path:
    return containerd_dir() / "containerd.sock"


def kubelet_dir() -> Path:
    return layout.state_dir() / "kubelet"


def write_certificates() -> None:
    """kubeadm's certificate and kubeconfig phases, for one node that is also the API server."""
    kubeadm = str(layout.program("kubernetes", "kubeadm"))
    config = pki() / "kubeadm.yaml"
    pki().mkdir(parents=True, exist_ok=True)
    config.write_text(
        f"""apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: {layout.NODE_IP}
  bindPort: {layout.API_PORT}
nodeRegistration:
  name: {layout.NAME}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: {layout.NAME}
kubernetesVersion: {layout.pins()["kubernetes"].version}
certificatesDir: {pki()}
controlPlaneEndpoint: {layout.NODE_IP}:{layout.API_PORT}
networking:
  serviceSubnet: {layout.SERVICE_CIDR}
  podSubnet: {layout.POD_CIDR}
  dnsDomain: cluster.local
apiServer:
  certSANs: [{layout.NODE_IP}, 127.0.0.1, localhost]
"""
    )
    run(kubeadm, "init", "phase", "certs", "all", "--config", str(config))
    run(
        kubeadm,
        "init",
        "phase",
        "kubeconfig",
        "all",
        "--config",
        str(config),
        "--kubeconfig-dir",
        str(pki()),
    )


def write_containerd_config() -> Path:
    root = containerd_dir()
    (root / "cni").mkdir(parents=True, exist_ok=True)
    runc = layout.program("runc")
    config = root / "config.toml"
    config.write_text(
        f"""version = 3
root = "{root}/root"
state = "{root}/state"

[grpc]
  address = "{containerd_socket()}"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "{root}/certs.d"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{layout.PAUSE_IMAGE}"

[plugins."io.containerd.cri.v1.runtime"]
  # Pod namespaces are mounted under the state folder, not /run/netns, so `down` finds them all.
  netns_mounts_under_state_dir = true
  # Pods' oom_score_adj never goes below containerd's own: lowering it needs CAP_SYS_RESOURCE,
  # which sandboxed machines often withhold even from root, and then every sandbox fails.
  restrict_oom_score_adj = true
  enable_cdi = false
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        Root = "{root}/runc"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "{root}/cni"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
"""
    )
    # The cluster's own registry speaks plain HTTP, on the node's address only.
    registry = f"{layout.NODE_IP}:{layout.REGISTRY_PORT}"
    (root / "certs.d" / registry).mkdir(parents=True, exist_ok=True)
    (root / "certs.d" / registry / "hosts.toml").write_text(
        f'server = "http://{registry}"\n\n[host."http://{registry}"]\n'
        '  capabilities = ["pull", "resolve"]\n'
    )
    # The bridge never masquerades: pod traffic has nowhere to go but the node and other pods.
    (root / "cni" / "10-bridge.conflist").write_text(
        json.dumps(
            {
                "cniVersion": "1.0.0",
                "name": layout.NAME,
                "plugins": [
                    {
                        "type": "bridge",
                        "bridge": "cni0",
                        "isGateway": True,
                        "ipMasq": False,
                        "hairpinMode": True,
                        "ipam": {
                            "type": "host-local",
                            "dataDir": str(root / "ipam"),
                            "ranges": [[{"subnet": layout.POD_CIDR}]],
                            "routes": [{"dst": "0.0.0.0/0"}],
                        },
                    },
                    {"type": "portmap", "capabilities": {"portMappings": True}},
                ],
            },
            indent=2,
        )
    )
    return config


def write_registry_config() -> Path:
    """distribution's registry: storage in the state folder, HTTP on the node's address."""
    config = layout.state_dir() / "registry.yaml"
    config.write_text(
        f"""version: 0.1
log: {{level: info}}
storage:
  filesystem: {{rootdirectory: {layout.state_dir() / "registry"}}}
  delete: {{enabled: true}}
http:
  addr: {layout.NODE_IP}:{layout.REGISTRY_PORT}
"""
    )
    return config


def write_kubelet_config() -> Path:
    directory = kubelet_dir()
    directory.mkdir(parents=True, exist_ok=True)
    resolv = directory / "resolv.conf"
    resolv.write_text(
        "# Pods with dnsPolicy Default get no name server: nothing outside the cluster.\n"
    )
    config = directory / "config.yaml"
    config.write_text(
        f"""apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {layout.NODE_IP}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {pki() / "ca.crt"}}}
authorization: {{mode: Webhook}}
cgroupDriver: cgroupfs
cgroupRoot: /{layout.NAME}
failCgroupV1: false
failSwapOn: false
clusterDNS: [{layout.CLUSTER_DNS}]
clusterDomain: cluster.local
resolvConf: {resolv}
containerRuntimeEndpoint: unix://{containerd_socket()}
podLogsDir: {layout.state_dir() / "pod-logs"}
# An image removed here could never be pulled back: no image garbage collection, no eviction.
imageGCHighThresholdPercent: 100
evictionHard:
  nodefs.available: "0%"
  imagefs.available: "0%"
  nodefs.inodesFree: "0%"
  imagefs.inodesFree: "0%"
# Leave the host's kernel settings as they are (kubelet would otherwise set panic and overcommit).
protectKernelDefaults: false
makeIPTablesUtilChains: true
serializeImagePulls: false
staticPodPath: ""
"""
    )
    return config


def write_kube_proxy_config() -> Path:
    config = layout.state_dir() / "kube-proxy.yaml"
    config.write_text(
        f"""apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
bindAddress: {layout.NODE_IP}
clusterCIDR: {layout.POD_CIDR}
hostnameOverride: {layout.NAME}
clientConnection: {{kubeconfig: {layout.kubeconfig()}}}
# conntrack's table size and timeouts are the host's, not the namespace's: leave them alone.
conntrack: {{maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}}
"""
    )
    return config


def wait_for(what: str, ready: Callable[[], bool], component: str, timeout: float = 120) -> None:
    """Poll until ready; a component that exits meanwhile stops the wait at once, with its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check_alive(component)
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise ClusterError(
        f"{component}: {what} not ready after {timeout:.0f}s", layout.log_dir() / f"{component}.log"
    )


def _unix_socket_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(path))
        return True


def _apiserver_ready() -> bool:
    context = ssl.create_default_context(cafile=str(pki() / "ca.crt"))
    context.load_cert_chain(
        str(pki() / "apiserver-kubelet-client.crt"), str(pki() / "apiserver-kubelet-client.key")
    )
    url = f"https://{layout.NODE_IP}:{layout.API_PORT}/readyz"
    try:
        with urllib.request.urlopen(url, context=context, timeout=3) as answer:
            return bool(answer.status == 200)
    except urllib.error.HTTPError:
        return False


def _http_ok(url: str) -> Callable[[], bool]:
    """A GET from inside the node's namespace (where these loopback ports are) that answers 2xx;
    an HTTPS endpoint's own self-signed certificate is not checked."""
    code = (
        "import ssl, urllib.request as u; "
        f"u.urlopen({url!r}, timeout=2, context=ssl._create_unverified_context())"
    )

    def check() -> bool:
        return in_node("python3", "-c", code, check=False).returncode == 0

    return check


def start_daemons() -> None:
    state = layout.state_dir()
    bins = {
        name: str(layout.program("kubernetes", name))
        for name in layout.pins()["kubernetes"].programs()
    }
    with step("etcd"):
        processes.start(
            "etcd",
            [
                str(layout.program("etcd")),
                "--name",
                layout.NAME,
                "--data-dir",
                str(state / "etcd"),
                "--listen-client-urls",
                "http://127.0.0.1:2379",
                "--advertise-client-urls",
                "http://127.0.0.1:2379",
                "--listen-peer-urls",
                "http://127.0.0.1:2380",
                "--listen-metrics-urls",
                "http://127.0.0.1:2381",
            ],
        )
        wait_for("etcd health", _http_ok("http://127.0.0.1:2381/health"), "etcd")
    with step("kube-apiserver"):
        p = pki()
        processes.start(
            "kube-apiserver",
            [
                bins["kube-apiserver"],
                f"--advertise-address={layout.NODE_IP}",
                f"--bind-address={layout.NODE_IP}",
                f"--secure-port={layout.API_PORT}",
                "--etcd-servers=http://127.0.0.1:2379",
                f"--service-cluster-ip-range={layout.SERVICE_CIDR}",
                f"--client-ca-file={p / 'ca.crt'}",
                f"--tls-cert-file={p / 'apiserver.crt'}",
                f"--tls-private-key-file={p / 'apiserver.key'}",
                f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}",
                f"--service-account-key-file={p / 'sa.pub'}",
                f"--service-account-signing-key-file={p / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--proxy-client-cert-file={p / 'front-proxy-client.crt'}",
                f"--proxy-client-key-file={p / 'front-proxy-client.key'}",
                f"--requestheader-client-ca-file={p / 'front-proxy-ca.crt'}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-username-headers=X-Remote-User",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--allow-privileged=true",
                "--kubelet-preferred-address-types=InternalIP",
                "--profiling=false",
            ],
        )
        wait_for("/readyz", _apiserver_ready, "kube-apiserver", timeout=180)
    with step("kube-controller-manager and kube-scheduler"):
        processes.start(
            "kube-controller-manager",
            [
                bins["kube-controller-manager"],
                f"--kubeconfig={p / 'controller-manager.conf'}",
                f"--authentication-kubeconfig={p / 'controller-manager.conf'}",
                f"--authorization-kubeconfig={p / 'controller-manager.conf'}",
                "--bind-address=127.0.0.1",
                f"--cluster-signing-cert-file={p / 'ca.crt'}",
                f"--cluster-signing-key-file={p / 'ca.key'}",
                f"--root-ca-file={p / 'ca.crt'}",
                f"--service-account-private-key-file={p / 'sa.key'}",
                f"--service-cluster-ip-range={layout.SERVICE_CIDR}",
                "--use-service-account-credentials=true",
                "--leader-elect=false",
                "--controllers=*,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller",
            ],
        )
        processes.start(
            "kube-scheduler",
            [
                bins["kube-scheduler"],
                f"--kubeconfig={p / 'scheduler.conf'}",
                f"--authentication-kubeconfig={p / 'scheduler.conf'}",
                f"--authorization-kubeconfig={p / 'scheduler.conf'}",
                "--bind-address=127.0.0.1",
                "--leader-elect=false",
            ],
        )
        wait_for("healthz", _http_ok("https://127.0.0.1:10257/healthz"), "kube-controller-manager")
        wait_for("healthz", _http_ok("https://127.0.0.1:10259/healthz"), "kube-scheduler")
    with step("containerd"):
        runc_dir = str(layout.bin_dir(layout.pins()["containerd"]))
        processes.start(
            "containerd",
            [
                str(layout.program("containerd", "containerd")),
                "--config",
                str(write_containerd_config()),
            ],
            # The shim is found on PATH.
            env={"PATH": f"{runc_dir}:/usr/sbin:/usr/bin:/sbin:/bin"},
        )
        wait_for("its socket", lambda: _unix_socket_answers(containerd_socket()), "containerd")
    import_images()
    with step(f"registry on {layout.NODE_IP}:{layout.REGISTRY_PORT} (for func's own builds)"):
        processes.start(
            "registry", [str(layout.program("registry")), "serve", str(write_registry_config())]
        )
        wait_for(
            "/v2/", _http_ok(f"http://{layout.NODE_IP}:{layout.REGISTRY_PORT}/v2/"), "registry"
        )
    with step("kubelet"):
        processes.start(
            "kubelet",
            [
                bins["kubelet"],
                f"--config={write_kubelet_config()}",
                f"--kubeconfig={p / 'kubelet.conf'}",
                f"--root-dir={kubelet_dir() / 'root'}",
                f"--node-ip={layout.NODE_IP}",
                f"--hostname-override={layout.NAME}",
            ],
        )
    with step("kube-proxy"):
        processes.start("kube-proxy", [bins["kube-proxy"], f"--config={write_kube_proxy_config()}"])
        wait_for("livez", _http_ok("http://127.0.0.1:10256/livez"), "kube-proxy")


def ctr(*args: str) -> list[str]:
    return [
        str(layout.program("containerd", "ctr")),
        "--address",
        str(containerd_socket()),
        "-n",
        "k8s.io",
        *args,
    ]


def import_images() -> None:
    from localcluster import build

    archives = [build.pause_archive()] + [
        build.image_archive(c, b) for c, binaries in build.IMAGES.items() for b in binaries
    ]
    with step(f"load {len(archives)} images into containerd"):
        for archive in archives:
            run(*ctr("images", "import", str(archive)))


def load_image(name: str) -> None:
    """An image from podman's storage into the node, as `kind load docker-image` does."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch, step(f"load {name} into the node"):
        archive = f"{scratch}/image.tar"
        run("podman", "save", "--format", "docker-archive", "-o", archive, name)
        run(*ctr("images", "import", archive))
