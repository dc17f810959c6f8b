"""A real local Kubernetes control plane for integration tests.

Like controller-runtime's envtest: etcd + kube-apiserver (+ kube-controller-
manager, so garbage collection and the workload controllers really run), built
from the official Go modules by ``tests/k8s-tools/build.sh`` or taken from
``KUBEBUILDER_ASSETS``. No kubelet or scheduler: pods are stored, never run.
"""

from .controlplane import ControlPlane, ControlPlaneError

__all__ = ["ControlPlane", "ControlPlaneError"]
