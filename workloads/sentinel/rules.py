"""Reading rule files: one rule per YAML document, or a SentinelRule custom resource as the operator has it.

Everything is validated before the database is touched: a bad file stops the whole run with one line
naming the file, the document and the field, so a half-applied rule set never happens.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from workloads.api.groupversion import GROUP
from workloads.api.rule import DriftCondition, Rule, SentinelRuleSpec, model_ref
from workloads.errors import DynolineError
from workloads.sentinel.health_index import HealthModel, resolve_model

MAX_FILE_BYTES = 1 << 20
SUFFIXES = (".yaml", ".yml", ".json")
API_GROUP = f"{GROUP}/"


@dataclass(frozen=True)
class LoadedRule:
    rule: Rule
    source: str
    model: HealthModel | None = None
    model_source: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule.name, self.rule.line)


def rule_files(path: str | Path) -> list[Path]:
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix in SUFFIXES)
        if not files:
            raise DynolineError(f"{root}: no rule files ({', '.join(SUFFIXES)}) in this directory")
        return files
    if not root.exists():
        raise DynolineError(f"{root}: no such rule file or directory")
    return [root]


def _documents(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DynolineError(f"{path}: {size} bytes is too large for a rule file (limit 1 MiB)")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DynolineError(f"{path}: cannot read: {exc}") from None
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise DynolineError(f"{path}:{where}: not valid YAML: {problem}") from None
    for index, doc in enumerate(docs, start=1):
        if doc is not None:
            yield index, doc


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
    return "; ".join(parts) + more


def parse_rule(doc: Any, where: str) -> Rule:
    """A rule document (plain rule, or a SentinelRule resource) → Rule, or a one-line error."""
    if not isinstance(doc, dict):
        raise DynolineError(f"{where}: a rule is a mapping of fields, got {type(doc).__name__}")
    try:
        if "apiVersion" in doc or "kind" in doc:
            if doc.get("kind") != "SentinelRule" or not str(doc.get("apiVersion", "")).startswith(API_GROUP):
                raise DynolineError(
                    f"{where}: only kind SentinelRule of {API_GROUP}* is a rule,"
                    f" got {doc.get('kind')!r} {doc.get('apiVersion')!r}"
                )
            meta = doc.get("metadata")
            name = meta.get("name") if isinstance(meta, dict) else None
            if not isinstance(name, str):
                raise DynolineError(f"{where}: SentinelRule needs metadata.name")
            return SentinelRuleSpec.model_validate(doc.get("spec")).to_rule(name)
        return Rule.model_validate(doc)
    except ValidationError as exc:
        raise DynolineError(f"{where}: invalid rule: {_validation_message(exc)}") from None


def load_rules(path: str | Path) -> list[LoadedRule]:
    """All rules under `path` (a file or a directory of files), validated, with their models resolved."""
    loaded: list[LoadedRule] = []
    seen: dict[tuple[str, str], str] = {}
    for file in rule_files(path):
        for index, doc in _documents(file):
            where = f"{file}" if index == 1 else f"{file} (document {index})"
            rule = parse_rule(doc, where)
            key = (rule.name, rule.line)
            if key in seen:
                raise DynolineError(
                    f"{where}: rule {rule.name!r} on line {rule.line!r} is also defined in {seen[key]}"
                )
            seen[key] = where
            model = source = None
            ref = model_ref(rule.condition)
            if ref is not None:
                try:
                    model, source = resolve_model(ref, file.parent)
                except DynolineError as exc:
                    raise DynolineError(f"{where}: rule {rule.name!r}: {exc}") from None
                if isinstance(rule.condition, DriftCondition) and model.regimes is None:
                    raise DynolineError(
                        f"{where}: rule {rule.name!r}: condition.regimes: model {ref!r} has no regimes"
                        " (fit it with `dynoline sentinel fit --regimes K`)"
                    )
            loaded.append(LoadedRule(rule, where, model, source))
    if not loaded:
        raise DynolineError(f"{path}: no rules found")
    return loaded
