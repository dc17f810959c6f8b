"""`dynoline operator` (run the operator) and `dynoline crds` (write the CRDs from the models)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workloads.errors import DynolineError

# The chart renders its copy as templates (templates/crds.yaml), byte-identical to crds/.
DEFAULT_OUTPUTS = (Path("crds"), Path("charts/dynoline/files/crds"))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "operator", help="run the Kubernetes operator (kopf) for DynoLines and SentinelRules"
    )
    p.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="watch only this namespace (repeatable; default: $DYNOLINE_NAMESPACES, else all)",
    )
    p.set_defaults(handler=_operator)

    p = subparsers.add_parser("crds", help="write the CustomResourceDefinitions generated from the models")
    p.add_argument(
        "-o",
        "--output",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="directory to write (repeatable; default: crds/ and, if present, charts/dynoline/files/crds/)",
    )
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file is out of date")
    p.add_argument("--stdout", action="store_true", help="print the CRDs as one YAML stream instead")
    p.set_defaults(handler=_crds)

    p = subparsers.add_parser(
        "sentinelrules", help="wrap rule files (e.g. a rule pack) as SentinelRule resources for kubectl apply"
    )
    p.add_argument("--rules", required=True, metavar="PATH", help="a rule file or a directory of them")
    p.add_argument(
        "--line", default=None, help="point every rule at this DynoLine (default: each rule's line)"
    )
    p.add_argument(
        "--schedule", default="*/1 * * * *", help="cron schedule of the CronJobs (default: every minute)"
    )
    p.add_argument(
        "-o", "--output", type=Path, default=None, metavar="FILE", help="write here instead of stdout"
    )
    p.set_defaults(handler=_sentinelrules)


def _operator(args: argparse.Namespace) -> int:
    from controllers.operator import run

    return run(args.namespace, verbose=args.verbose)


def _outputs(args: argparse.Namespace) -> list[Path]:
    if args.output:
        return list(args.output)
    return [d for d in DEFAULT_OUTPUTS if d == DEFAULT_OUTPUTS[0] or d.parent.is_dir()]


def _crds(args: argparse.Namespace) -> int:
    from controllers import crdgen, rbac

    if args.stdout:
        sys.stdout.write("---\n".join(crdgen.rendered().values()))
        return 0
    outputs = _outputs(args)
    # The chart also gets the operator's RBAC rules (generated from controllers/rbac.py).
    rules = [
        d.parent / rbac.RULES_FILE
        for d in outputs
        if d.name == "crds" and d.parent.name == "files" and d.parent.parent.name == "dynoline"
    ]
    if args.check:
        stale = [str(d / name) for d in outputs for name in crdgen.stale(d)]
        stale += [str(p) for p in rules if not p.exists() or p.read_text() != rbac.render()]
        if stale:
            raise DynolineError(f"generated files out of date (run `dynoline crds`): {', '.join(stale)}")
        print(f"CRDs up to date in {', '.join(map(str, outputs))}")
        return 0
    for directory in outputs:
        for path in crdgen.write(directory):
            print(path)
    for path in rules:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != rbac.render():
            path.write_text(rbac.render())
        print(path)
    return 0


def _sentinelrules(args: argparse.Namespace) -> int:
    from controllers.rulepack import command, sentinel_rules, to_yaml
    from workloads.sentinel.rules import load_rules

    loaded = [item.rule for item in load_rules(args.rules)]
    resources = sentinel_rules(loaded, schedule=args.schedule, line=args.line)
    text = to_yaml(resources, generated_by=command(str(args.rules), args.line, args.schedule))
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
        print(args.output)
    return 0
