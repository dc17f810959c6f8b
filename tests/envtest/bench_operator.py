"""`python -m tests.envtest.bench_operator [ARGS]`: `dynoline bench operator` on a local control plane.

The benchmark itself is product code (workloads/bench/operator.py, any cluster); starting etcd,
kube-apiserver and kube-controller-manager is the test harness's job, so that part lives here and
`make bench` calls it. ARGS go to `dynoline bench operator` (e.g. `--lines 50 --json`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from tests.envtest.controlplane import ControlPlane
from workloads import cli
from workloads.api.groupversion import KINDS

CRDS = Path(__file__).resolve().parents[2] / "crds"


def main(argv: Sequence[str] = ()) -> int:
    with ControlPlane(controller_manager=True) as cp:
        cp.kubectl("apply", "-f", str(CRDS))
        cp.kubectl("wait", "--for=condition=Established", *(f"crd/{k.crd_name}" for k in KINDS))
        return cli.main(["bench", "operator", "--kubeconfig", str(cp.kubeconfig), *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
