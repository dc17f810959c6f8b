"""Run etcd, kube-apiserver and kube-controller-manager locally for tests.

Why not a mock: the operator's behaviour depends on real API semantics
(admission, RBAC, watches, resourceVersions, garbage collection, the workload
controllers), so the integration tier talks to the real binaries, like
controller-runtime's envtest. Everything listens on 127.0.0.1 only and lives
in one temp dir (certs, etcd data, logs) that ``stop()`` removes.
"""

from __future__ import annotations

import atexit
import base64
import collections
import contextlib
import ctypes
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
BUILD_SCRIPT: Final = REPO_ROOT / "tests" / "k8s-tools" / "build.sh"
SERVICE_CLUSTER_IP_RANGE: Final = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER: Final = "https://kubernetes.default.svc.cluster.local"
LOG_TAIL_LINES: Final = 30
_PR_SET_PDEATHSIG: Final = 1


class ControlPlaneError(RuntimeError):
    """Raised when the control plane cannot be built, started or used."""


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Last lines of a log file, for error messages that explain a failure."""
    try:
        with path.open("r", errors="replace") as fh:
            return "".join(collections.deque(fh, maxlen=lines))
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_binaries(script: Path = BUILD_SCRIPT) -> Path:
    """Run the build script (honours KUBEBUILDER_ASSETS) and return the bin dir.

    Build progress is streamed to stderr because a cold build takes minutes;
    on failure the last lines are put into the exception so CI logs show why.
    """
    if not script.is_file():
        raise ControlPlaneError(f"build script not found: {script}")
    err_tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
    with subprocess.Popen(
        ["bash", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        stdout_lines: list[str] = []
        reader = threading.Thread(target=lambda: stdout_lines.extend(proc.stdout or []), daemon=True)
        reader.start()
        for line in proc.stderr:
            err_tail.append(line)
            sys.stderr.write(line)
        rc = proc.wait()
        reader.join()
    if rc != 0:
        raise ControlPlaneError(
            f"{script} failed with exit code {rc}; last stderr lines:\n{''.join(err_tail)}"
        )
    lines = [line.strip() for line in stdout_lines if line.strip()]
    if not lines or not Path(lines[-1]).is_dir():
        raise ControlPlaneError(f"{script} printed no bin dir (stdout: {stdout_lines!r})")
    return Path(lines[-1])


# --------------------------------------------------------------------------- PKI


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes) -> Path:
    """Write a secret file readable by the owner only."""
    path.write_bytes(data)
    path.chmod(0o600)
    return path


@dataclass(frozen=True)
class _CertPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class PKI:
    """File paths of everything the components need to trust each other."""

    ca: _CertPair
    apiserver: _CertPair
    admin: _CertPair
    controller_manager: _CertPair
    controller_manager_serving: _CertPair
    service_account_key: Path
    service_account_pub: Path


def _issue(
    directory: Path,
    name: str,
    common_name: str,
    *,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    organizations: Sequence[str] = (),
    dns_names: Sequence[str] = (),
    ips: Sequence[str] = (),
    server: bool = False,
    client: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey, _CertPair]:
    """Create a key and a certificate (self-signed CA when ``ca`` is None)."""
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    subject = x509.Name(attrs)
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, signing_key = (subject, key) if ca is None else (ca[0].subject, ca[1])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca is None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        ).add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
        usages += [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        builder = (
            builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca[1].public_key()),
                critical=False,
            )
        )
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(signing_key, hashes.SHA256())
    pair = _CertPair(
        cert=_write(directory / f"{name}.crt", cert.public_bytes(serialization.Encoding.PEM)),
        key=_write(directory / f"{name}.key", _pem_key(key)),
    )
    return cert, key, pair


def generate_pki(directory: Path) -> PKI:
    """A throw-away CA plus serving, client and service-account keys."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key, ca_pair = _issue(directory, "ca", "dynoline-envtest-ca")
    ca = (ca_cert, ca_key)
    service_ip = str(next(ipaddress.ip_network(SERVICE_CLUSTER_IP_RANGE).hosts()))
    _, _, apiserver = _issue(
        directory,
        "apiserver",
        "kube-apiserver",
        ca=ca,
        dns_names=[
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ],
        ips=["127.0.0.1", service_ip],
        server=True,
    )
    _, _, admin = _issue(
        directory, "admin", "envtest-admin", ca=ca, organizations=["system:masters"], client=True
    )
    # The bootstrap RBAC policy grants this user exactly what kcm needs.
    _, _, kcm = _issue(directory, "kcm", "system:kube-controller-manager", ca=ca, client=True)
    _, _, kcm_serving = _issue(
        directory,
        "kcm-serving",
        "kube-controller-manager",
        ca=ca,
        dns_names=["localhost"],
        ips=["127.0.0.1"],
        server=True,
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sa_pub = sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return PKI(
        ca=ca_pair,
        apiserver=apiserver,
        admin=admin,
        controller_manager=kcm,
        controller_manager_serving=kcm_serving,
        service_account_key=_write(directory / "sa.key", _pem_key(sa_key)),
        service_account_pub=_write(directory / "sa.pub", sa_pub),
    )


def write_kubeconfig(path: Path, server: str, ca: Path, user: str, client: _CertPair) -> Path:
    """Self-contained kubeconfig (JSON is valid YAML) with embedded cert data."""

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "envtest", "cluster": {"server": server, "certificate-authority-data": b64(ca)}}
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(client.cert),
                    "client-key-data": b64(client.key),
                },
            }
        ],
        "contexts": [{"name": "envtest", "context": {"cluster": "envtest", "user": user}}],
        "current-context": "envtest",
        "preferences": {},
    }
    _write(path, json.dumps(config, indent=2).encode())
    return path


# --------------------------------------------------------------------- processes


def _parent_death_signal() -> Callable[[], None] | None:
    """preexec_fn making a child die with the thread that started it (Linux).

    Keeps etcd/apiserver from outliving a killed pytest (CI timeouts). Only
    used from the main thread: the kernel ties the signal to the forking
    thread, so a short-lived worker thread would kill the control plane.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return preexec


class _Process:
    """One control-plane component: argv, log file and the running child."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        if self.running:
            return
        self._log = self.log_path.open("ab")
        self._log.write(f"\n=== starting {self.name}: {' '.join(self.argv)}\n".encode())
        self._log.flush()
        self.popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_parent_death_signal(),
        )

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        if self.popen is not None:
            if self.popen.poll() is None:
                self.popen.terminate()
                try:
                    self.popen.wait(grace)
                except subprocess.TimeoutExpired:
                    self.popen.kill()
                    self.popen.wait(10)
            self.popen = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def failure(self, what: str) -> ControlPlaneError:
        """An error carrying the component's log tail, so failures explain themselves."""
        if self.popen is None:
            state = "not started"
        elif (code := self.popen.poll()) is None:
            state = "still running"
        else:
            state = f"exit code {code}"
        return ControlPlaneError(
            f"{self.name} {what} ({state}); log {self.log_path} (kept only with "
            f"DYNOLINE_ENVTEST_KEEP_TMP=1), last {LOG_TAIL_LINES} lines:\n{_tail(self.log_path)}"
        )


# ------------------------------------------------------------------ control plane


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager on loopback ports.

    Use as a context manager (or call ``start()``/``stop()``). Attributes after
    start: ``kubeconfig`` (admin, group system:masters), ``server`` (URL),
    ``bin_dir``, ``tmp_dir``, ``ca_cert``, ``admin_cert``/``admin_key`` (the
    kubeconfig's client cert as files), ``etcd_url``, ``has_controller_manager``.

    ``controller_manager``: True requires kube-controller-manager, False never
    runs it, None (default) runs it when the binary exists (KUBEBUILDER_ASSETS
    from controller-runtime's setup-envtest has none) and warns otherwise.
    """

    def __init__(
        self,
        *,
        bin_dir: str | os.PathLike[str] | None = None,
        controller_manager: bool | None = None,
        extra_apiserver_args: Sequence[str] = (),
        start_timeout: float = 120.0,
        keep_tmp_dir: bool | None = None,
    ) -> None:
        self._requested_bin_dir = None if bin_dir is None else Path(bin_dir)
        self._want_kcm = controller_manager
        self._extra_apiserver_args = list(extra_apiserver_args)
        self.start_timeout = start_timeout
        if keep_tmp_dir is None:
            keep_tmp_dir = os.environ.get("DYNOLINE_ENVTEST_KEEP_TMP", "") not in ("", "0")
        self.keep_tmp_dir = keep_tmp_dir
        self.bin_dir: Path = Path()
        self.tmp_dir: Path = Path()
        self.kubeconfig: Path = Path()
        self.server = ""
        self.etcd_url = ""
        self.ca_cert: Path = Path()
        self.admin_cert: Path = Path()
        self.admin_key: Path = Path()
        self.has_controller_manager = False
        self._pki: PKI | None = None
        self._etcd: _Process | None = None
        self._apiserver: _Process | None = None
        self._kcm: _Process | None = None
        self._kcm_port = 0
        self._started = False

    # ----------------------------------------------------------- lifecycle

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> ControlPlane:
        """Build/locate binaries, then start etcd, apiserver and kcm and wait for them."""
        if self._started:
            return self
        self.bin_dir = self._requested_bin_dir or build_binaries()
        etcd_bin = self._required_binary("etcd")
        apiserver_bin = self._required_binary("kube-apiserver")
        kcm_bin = self._binary("kube-controller-manager")
        if self._want_kcm is True and kcm_bin is None:
            raise ControlPlaneError(f"kube-controller-manager not found in {self.bin_dir}")
        if self._want_kcm is None and kcm_bin is None:
            warnings.warn(
                f"no kube-controller-manager in {self.bin_dir}: garbage collection and "
                "workload controllers will not run",
                stacklevel=2,
            )
        self.tmp_dir = Path(tempfile.mkdtemp(prefix="dynoline-envtest-"))
        self._started = True
        atexit.register(self.stop)
        try:
            (self.tmp_dir / "logs").mkdir()
            self._pki = pki = generate_pki(self.tmp_dir / "pki")
            self.ca_cert = pki.ca.cert
            self.admin_cert, self.admin_key = pki.admin.cert, pki.admin.key
            self._start_etcd(etcd_bin)
            self._start_apiserver_process(apiserver_bin)
            self.kubeconfig = write_kubeconfig(
                self.tmp_dir / "admin.kubeconfig", self.server, pki.ca.cert, "envtest-admin", pki.admin
            )
            if kcm_bin is not None and self._want_kcm is not False:
                self._start_kcm(kcm_bin)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate kcm, apiserver, etcd (in that order) and remove the temp dir."""
        if not self._started:
            return
        self._started = False
        atexit.unregister(self.stop)
        for proc in (self._kcm, self._apiserver, self._etcd):
            if proc is not None:
                proc.stop()
        self._kcm = self._apiserver = self._etcd = None
        self.has_controller_manager = False
        if self.keep_tmp_dir:
            sys.stderr.write(f"envtest: kept {self.tmp_dir}\n")
        else:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def stop_apiserver(self) -> None:
        """Stop only kube-apiserver (etcd keeps the data) to test API outages."""
        if self._apiserver is None:
            raise ControlPlaneError("control plane not started")
        self._apiserver.stop()

    def start_apiserver(self) -> None:
        """Start kube-apiserver again on the same port and wait until it is ready."""
        if self._apiserver is None:
            raise ControlPlaneError("control plane not started")
        if self._apiserver.running:
            return
        self._apiserver.start()
        self._wait_apiserver_ready()

    @property
    def apiserver_running(self) -> bool:
        """Whether the kube-apiserver process is alive (not whether it is ready)."""
        return self._apiserver is not None and self._apiserver.running

    # ------------------------------------------------------------- helpers

    def kubectl(
        self,
        *args: str,
        check: bool = True,
        stdin: str | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this control plane; raise with stderr on failure."""
        kubectl = self.bin_dir / "kubectl"
        exe = str(kubectl) if kubectl.is_file() else shutil.which("kubectl")
        if exe is None:
            raise ControlPlaneError(f"no kubectl in {self.bin_dir} or on PATH")
        argv = [exe, f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise ControlPlaneError(
                f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr}{result.stdout}"
            )
        return result

    def environ(self) -> dict[str, str]:
        """os.environ plus KUBECONFIG, for running the operator as a subprocess."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def log_path(self, component: str) -> Path:
        """Log file of 'etcd', 'kube-apiserver' or 'kube-controller-manager'."""
        return self.tmp_dir / "logs" / f"{component}.log"

    # ------------------------------------------------------------ internals

    def _binary(self, name: str) -> Path | None:
        path = self.bin_dir / name
        return path if path.is_file() and os.access(path, os.X_OK) else None

    def _required_binary(self, name: str) -> Path:
        path = self._binary(name)
        if path is None:
            raise ControlPlaneError(f"{name} not found in {self.bin_dir}")
        return path

    def _ssl_context(self, *, client_cert: bool) -> ssl.SSLContext:
        assert self._pki is not None
        ctx = ssl.create_default_context(cafile=str(self._pki.ca.cert))
        if client_cert:
            ctx.load_cert_chain(str(self._pki.admin.cert), str(self._pki.admin.key))
        return ctx

    def _wait(self, proc: _Process, what: str, probe: Callable[[], bool]) -> None:
        """Poll ``probe`` until true; fail fast if the process dies or time runs out."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            if not proc.running:
                raise proc.failure(f"died while waiting for {what}")
            with contextlib.suppress(OSError, ValueError):
                if probe():
                    return
            if time.monotonic() > deadline:
                raise proc.failure(f"not {what} after {self.start_timeout:.0f}s")
            time.sleep(0.2)

    @staticmethod
    def _get(url: str, ctx: ssl.SSLContext | None = None) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(url, timeout=5, context=ctx) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def _start_etcd(self, etcd_bin: Path) -> None:
        client_port, peer_port = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self._etcd = _Process(
            "etcd",
            [
                str(etcd_bin),
                "--name=envtest",
                f"--data-dir={self.tmp_dir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=envtest={peer_url}",
                "--initial-cluster-state=new",
                # Test data is disposable: skipping fsync makes writes much faster.
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
            self.log_path("etcd"),
        )
        self._etcd.start()

        def healthy() -> bool:
            status, body = self._get(f"{self.etcd_url}/health")
            return status == 200 and json.loads(body).get("health") == "true"

        self._wait(self._etcd, "healthy", healthy)

    def _start_apiserver_process(self, apiserver_bin: Path) -> None:
        assert self._pki is not None
        pki = self._pki
        port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        self._apiserver = _Process(
            "kube-apiserver",
            [
                str(apiserver_bin),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--tls-cert-file={pki.apiserver.cert}",
                f"--tls-private-key-file={pki.apiserver.key}",
                f"--client-ca-file={pki.ca.cert}",
                "--authorization-mode=Node,RBAC",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={pki.service_account_pub}",
                f"--service-account-signing-key-file={pki.service_account_key}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--allow-privileged=true",
                # A loopback advertise address cannot go into the kubernetes
                # Service's endpoints; nothing in-cluster needs them here.
                "--endpoint-reconciler-type=none",
                # Without it SIGTERM waits the full 60s shutdown timeout for
                # open watches (kcm, the operator) before exiting.
                "--shutdown-watch-termination-grace-period=2s",
                f"--cert-dir={self.tmp_dir / 'apiserver-certs'}",
                *self._extra_apiserver_args,
            ],
            self.log_path("kube-apiserver"),
        )
        self._apiserver.start()
        self._wait_apiserver_ready()

    def _wait_apiserver_ready(self) -> None:
        assert self._apiserver is not None
        ctx = self._ssl_context(client_cert=True)

        def ready() -> bool:
            status, body = self._get(f"{self.server}/readyz", ctx)
            return status == 200 and body.strip() == b"ok"

        self._wait(self._apiserver, "ready (/readyz)", ready)

    def _start_kcm(self, kcm_bin: Path) -> None:
        assert self._pki is not None
        pki = self._pki
        kubeconfig = write_kubeconfig(
            self.tmp_dir / "kcm.kubeconfig",
            self.server,
            pki.ca.cert,
            "system:kube-controller-manager",
            pki.controller_manager,
        )
        self._kcm_port = free_port()
        self._kcm = _Process(
            "kube-controller-manager",
            [
                str(kcm_bin),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self._kcm_port}",
                f"--tls-cert-file={pki.controller_manager_serving.cert}",
                f"--tls-private-key-file={pki.controller_manager_serving.key}",
                f"--cert-dir={self.tmp_dir / 'kcm-certs'}",
                f"--service-account-private-key-file={pki.service_account_key}",
                f"--root-ca-file={pki.ca.cert}",
                f"--cluster-signing-cert-file={pki.ca.cert}",
                f"--cluster-signing-key-file={pki.ca.key}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--use-service-account-credentials=true",
                "--leader-elect=false",
                "--controllers=*",
            ],
            self.log_path("kube-controller-manager"),
        )
        self._kcm.start()
        serving_ctx = self._ssl_context(client_cert=False)

        def healthy() -> bool:
            status, body = self._get(f"https://127.0.0.1:{self._kcm_port}/healthz", serving_ctx)
            return status == 200 and body.strip() == b"ok"

        self._wait(self._kcm, "healthy (/healthz)", healthy)
        # /healthz answers before the controllers run; the namespace's default
        # ServiceAccount appearing proves controllers (and their SA tokens) work.
        admin_ctx = self._ssl_context(client_cert=True)

        def controllers_running() -> bool:
            url = f"{self.server}/api/v1/namespaces/default/serviceaccounts/default"
            return self._get(url, admin_ctx)[0] == 200

        self._wait(self._kcm, "running controllers (default ServiceAccount)", controllers_running)
        self.has_controller_manager = True
