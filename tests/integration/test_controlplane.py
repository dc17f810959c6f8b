"""Smoke tests: the envtest control plane is a real, working Kubernetes.

They prove what the operator's integration tests rely on: real API storage,
garbage collection, the workload controllers (deployment, replicaset, cronjob,
job), kubectl access, and data surviving an API-server restart (etcd keeps
it). There is no kubelet or scheduler, so pods are created but never run.
"""

from __future__ import annotations

from typing import Protocol

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from tests.envtest import ControlPlane
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


class HasMetadata(Protocol):
    """Any Kubernetes API object model."""

    @property
    def metadata(self) -> k8s.V1ObjectMeta | None: ...


LABELS = {"app": "smoke"}


def meta(obj: HasMetadata) -> k8s.V1ObjectMeta:
    """An object's metadata; the client types it optional, the server always sets it."""
    assert obj.metadata is not None
    return obj.metadata


def uid(obj: HasMetadata) -> str:
    """An object's UID, as owner references need it."""
    value = meta(obj).uid
    assert value
    return value


def owned_by(obj: HasMetadata, owner: HasMetadata) -> bool:
    """Whether ``owner`` is in the object's ownerReferences (controllers set this)."""
    return any(ref.uid == uid(owner) for ref in meta(obj).owner_references or [])


def pod_template(restart_policy: str) -> k8s.V1PodTemplateSpec:
    """A minimal valid pod template (never runs: there is no kubelet)."""
    return k8s.V1PodTemplateSpec(
        metadata=k8s.V1ObjectMeta(labels=LABELS),
        spec=k8s.V1PodSpec(
            containers=[k8s.V1Container(name="main", image="busybox:1.36", command=["true"])],
            restart_policy=restart_policy,
        ),
    )


@pytest.fixture
def core(k8s_api_client: k8s.ApiClient) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(k8s_api_client)


def test_namespace_is_created_and_active(core: k8s.CoreV1Api, namespace: str) -> None:
    ns = core.read_namespace(namespace)
    assert meta(ns).name == namespace
    assert ns.status is not None and ns.status.phase == "Active"
    # kcm's serviceaccount controller fills every new namespace.
    wait_for(
        "the default ServiceAccount",
        lambda: core.list_namespaced_service_account(namespace).items,
        timeout=30,
    )


def test_kubectl_get_ns(control_plane: ControlPlane, namespace: str) -> None:
    out = control_plane.kubectl("get", "ns", "-o", "name").stdout.split()
    assert "namespace/default" in out
    assert f"namespace/{namespace}" in out


def test_garbage_collector_deletes_dependents(
    control_plane: ControlPlane, core: k8s.CoreV1Api, namespace: str
) -> None:
    assert control_plane.has_controller_manager, "kube-controller-manager is not running"
    owner = core.create_namespaced_config_map(
        namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="owner"), data={"a": "1"})
    )
    ref = k8s.V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner", uid=uid(owner))
    core.create_namespaced_config_map(
        namespace,
        k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="dependent", owner_references=[ref]), data={"b": "2"}),
    )
    core.delete_namespaced_config_map("owner", namespace)

    def dependent_gone() -> bool:
        try:
            core.read_namespaced_config_map("dependent", namespace)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False

    wait_for("the GC to delete the dependent ConfigMap", dependent_gone, timeout=60)


def test_deployment_creates_replicaset_and_pods(
    control_plane: ControlPlane, k8s_api_client: k8s.ApiClient, namespace: str
) -> None:
    assert control_plane.has_controller_manager, "kube-controller-manager is not running"
    apps = k8s.AppsV1Api(k8s_api_client)
    deployment = apps.create_namespaced_deployment(
        namespace,
        k8s.V1Deployment(
            metadata=k8s.V1ObjectMeta(name="web"),
            spec=k8s.V1DeploymentSpec(
                replicas=1,
                selector=k8s.V1LabelSelector(match_labels=LABELS),
                template=pod_template("Always"),
            ),
        ),
    )
    rs = wait_for(
        "a ReplicaSet owned by the Deployment",
        lambda: [r for r in apps.list_namespaced_replica_set(namespace).items if owned_by(r, deployment)],
        timeout=30,
    )[0]
    core = k8s.CoreV1Api(k8s_api_client)
    wait_for(
        "a Pod owned by the ReplicaSet",
        lambda: [p for p in core.list_namespaced_pod(namespace).items if owned_by(p, rs)],
        timeout=30,
    )


def test_cronjob_creates_job(
    control_plane: ControlPlane, k8s_api_client: k8s.ApiClient, namespace: str
) -> None:
    assert control_plane.has_controller_manager, "kube-controller-manager is not running"
    batch = k8s.BatchV1Api(k8s_api_client)
    cronjob = batch.create_namespaced_cron_job(
        namespace,
        k8s.V1CronJob(
            metadata=k8s.V1ObjectMeta(name="tick"),
            spec=k8s.V1CronJobSpec(
                schedule="* * * * *",
                concurrency_policy="Forbid",
                job_template=k8s.V1JobTemplateSpec(
                    spec=k8s.V1JobSpec(backoff_limit=0, template=pod_template("Never"))
                ),
            ),
        ),
    )
    # The next minute boundary is at most 60 s away; allow for controller lag.
    wait_for(
        "a Job created by the CronJob",
        lambda: [j for j in batch.list_namespaced_job(namespace).items if owned_by(j, cronjob)],
        timeout=75,
        interval=1.0,
    )


def test_data_survives_apiserver_restart(
    control_plane: ControlPlane, core: k8s.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_config_map(
        namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="keep"), data={"k": "v"})
    )
    server = control_plane.server
    control_plane.stop_apiserver()
    try:
        assert not control_plane.apiserver_running
        down = control_plane.kubectl("get", "ns", "--request-timeout=5s", check=False)
        assert down.returncode != 0, "API server still answered after stop_apiserver()"
    finally:
        control_plane.start_apiserver()
    assert control_plane.server == server
    assert core.read_namespaced_config_map("keep", namespace).data == {"k": "v"}
    assert namespace in control_plane.kubectl("get", "ns", namespace, "-o", "name").stdout
