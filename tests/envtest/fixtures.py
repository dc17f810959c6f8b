"""pytest fixtures exposing the local control plane to integration tests.

Load with ``pytest_plugins = ["tests.envtest.fixtures"]`` in tests/conftest.py.
A build or start failure is an ERROR for every test that needs the control
plane, never a skip: a silently skipped integration tier hides regressions.
"""

from __future__ import annotations

import contextlib
import uuid
import warnings
from collections.abc import Iterator

import pytest
from kubernetes import client as k8s

from .controlplane import ControlPlane


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """One control plane per session: a start costs seconds, a cold build minutes."""
    with ControlPlane() as cp:
        yield cp


@pytest.fixture(scope="session")
def k8s_api_client(control_plane: ControlPlane) -> Iterator[k8s.ApiClient]:
    """Admin (system:masters) API client for the session's control plane."""
    cfg = k8s.Configuration()
    cfg.host = control_plane.server
    cfg.ssl_ca_cert = str(control_plane.ca_cert)
    cfg.cert_file = str(control_plane.admin_cert)
    cfg.key_file = str(control_plane.admin_key)
    with k8s.ApiClient(cfg) as api_client:
        yield api_client


@pytest.fixture
def namespace(control_plane: ControlPlane, k8s_api_client: k8s.ApiClient) -> Iterator[str]:
    """A fresh namespace per test so tests sharing the session cluster stay isolated."""
    if not control_plane.apiserver_running:
        # An earlier test stopped the API server and failed before restarting it.
        control_plane.start_apiserver()
    core = k8s.CoreV1Api(k8s_api_client)
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        # Best effort: the namespace controller finalizes it in the background.
        deleted = False
        if control_plane.apiserver_running:
            with contextlib.suppress(Exception):
                core.delete_namespace(name, _request_timeout=10)
                deleted = True
        if not deleted:
            warnings.warn(f"could not delete test namespace {name}", stacklevel=1)
