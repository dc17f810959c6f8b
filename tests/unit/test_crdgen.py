"""CRD generation from the pydantic models: structural, complete, and the committed YAML is current."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, field_validator, model_validator

from controllers import cli, crdgen, openapi
from workloads.api import cel
from workloads.api.line import DynoLineSpec
from workloads.errors import DynolineError

REPO = Path(__file__).resolve().parents[2]
COMMITTED = (REPO / "crds", REPO / "charts" / "dynoline" / "files" / "crds")


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")


def _schema(kind: crdgen.Kind) -> dict[str, Any]:
    schema: dict[str, Any] = crdgen.crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("directory", COMMITTED, ids=lambda p: str(p.relative_to(REPO)))
def test_committed_crds_match_the_models(directory: Path) -> None:
    stale = crdgen.stale(directory)
    assert stale == [], f"{directory} is out of date for {stale}: run `dynoline crds` and commit the result"


def test_every_pydantic_validator_has_a_cel_twin() -> None:
    for kind in crdgen.KINDS:
        assert openapi.uncovered_validators(kind.spec) == []


def test_a_validator_without_a_twin_is_listed_and_a_twin_lands_in_the_schema() -> None:
    class Probe(BaseModel):
        low: int
        high: int

        @field_validator("low")
        @classmethod
        def _even(cls, value: int) -> int:
            return value

        @model_validator(mode="after")
        @cel.twin(cel.rule("self.low <= self.high", "low must not exceed high"))
        def _ordered(self) -> Probe:
            return self

    assert openapi.uncovered_validators(Probe) == ["Probe._even (low)"]
    schema = openapi.openapi(Probe)
    assert schema["x-kubernetes-validations"] == [
        {"rule": "self.low <= self.high", "message": "low must not exceed high"}
    ]


@pytest.mark.parametrize("kind", crdgen.KINDS, ids=lambda k: k.kind)
def test_schema_is_structural(kind: crdgen.Kind) -> None:
    for path, node in _walk(_schema(kind)):
        assert "$ref" not in node, path
        assert "oneOf" not in node and "anyOf" not in node and "allOf" not in node, path
        assert node.get("additionalProperties") is not False, path
        if "additionalProperties" in node:  # a map: its value schema, never alongside properties
            assert isinstance(node["additionalProperties"], dict) and "properties" not in node, path
        assert "title" not in node, path
        if "properties" in node:
            assert node.get("type") == "object", path
        if isinstance(node.get("exclusiveMinimum"), int | float) and not isinstance(
            node.get("exclusiveMinimum"), bool
        ):
            pytest.fail(f"{path}: JSON-schema-2020 exclusiveMinimum is not OpenAPI v3")


@pytest.mark.parametrize("kind", crdgen.KINDS, ids=lambda k: k.kind)
def test_names_columns_and_status_subresource(kind: crdgen.Kind) -> None:
    doc = crdgen.crd(kind)
    names = doc["spec"]["names"]
    assert names["shortNames"] == list(kind.names.short_names)
    assert names["categories"] == ["dynoline"]
    assert doc["spec"]["scope"] == "Namespaced"
    version = doc["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True  # room for other operator versions
    assert status["properties"]["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[-1] == "Age"


def test_printer_columns_cover_the_brief() -> None:
    line_cols = {c["name"]: c["jsonPath"] for c in crdgen.DYNOLINE.columns}
    assert line_cols["Units"] == ".spec.units" and line_cols["Rate"] == ".spec.rateHz"
    assert line_cols["Ready"] == ".status.shardsReady" and line_cols["State"] == ".status.state"
    rule_cols = {c["name"]: c["jsonPath"] for c in crdgen.SENTINELRULE.columns}
    assert rule_cols["Line"] == ".spec.lineRef.name" and rule_cols["Kind"] == ".spec.condition.type"
    assert rule_cols["Severity"] == ".spec.severity" and rule_cols["Schedule"] == ".spec.schedule"
    assert rule_cols["Open"] == ".status.openAlerts" and rule_cols["Last Run"] == ".status.lastRunTime"


def test_ranges_enums_patterns_and_required_come_from_the_model() -> None:
    spec = _schema(crdgen.DYNOLINE)["properties"]["spec"]
    props = spec["properties"]
    assert (
        props["units"]["minimum"] == 1
        and props["units"]["maximum"] == DynoLineSpec.model_fields["units"].metadata[1].le
    )
    assert props["rateHz"]["exclusiveMinimum"] is True and props["rateHz"]["minimum"] == 0
    assert props["telemetryPolicy"]["enum"] == ["Retain", "Delete"]
    assert props["retention"]["pattern"].startswith("^[1-9]")
    assert spec["required"] == ["database"]
    assert props["database"]["properties"]["secretRef"]["required"] == ["name"]


def test_defaults_match_the_model() -> None:
    props = _schema(crdgen.DYNOLINE)["properties"]["spec"]["properties"]
    model = DynoLineSpec.model_validate({"database": {"secretRef": {"name": "db"}}})
    dumped = model.model_dump(mode="json", by_alias=True)
    for name in ("units", "rateHz", "shards", "retention", "paused", "telemetryPolicy", "faults"):
        assert props[name]["default"] == dumped[name], name
    # A union has no default: a defaulted variant's fields would linger when a user switches variant.
    assert "default" not in props["source"]


def test_a_union_becomes_one_object_with_rules_per_variant() -> None:
    source = _schema(crdgen.DYNOLINE)["properties"]["spec"]["properties"]["source"]
    assert source["properties"]["type"]["enum"] == ["cmapss", "synthetic"]
    assert {"dataset", "split", "loop", "seed"} <= set(source["properties"])
    rules = {r["message"]: r["rule"] for r in source["x-kubernetes-validations"]}
    assert rules["a synthetic source does not take dataset, split, loop"] == (
        "self.type != 'synthetic' || !(has(self.dataset) || has(self.split) || has(self.__loop__))"
    )
    assert rules["a cmapss source does not take seed"] == "self.type != 'cmapss' || !(has(self.seed))"


def test_cross_field_rules_are_present() -> None:
    spec = _schema(crdgen.DYNOLINE)["properties"]["spec"]
    rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert "self.shards <= self.units" in rules
    condition = _schema(crdgen.SENTINELRULE)["properties"]["spec"]["properties"]["condition"]
    sustained = [r for r in condition["x-kubernetes-validations"] if "sustained" in r["rule"]]
    # The model validator's rule, guarded so it only applies to the sustained variant.
    assert any("has(self.__for__) != (has(self.k) || has(self.n))" in r["rule"] for r in sustained)


def test_the_spool_claim_template_cannot_change_on_an_existing_line() -> None:
    from workloads.api.line import SPOOL_CLAIM_IMMUTABLE, SPOOL_CLAIM_UNCHANGED

    spec = _schema(crdgen.DYNOLINE)["properties"]["spec"]
    [rule] = [r for r in spec["x-kubernetes-validations"] if "oldSelf" in r["rule"]]
    assert rule == {"rule": SPOOL_CLAIM_UNCHANGED, "message": SPOOL_CLAIM_IMMUTABLE}
    # On the spec, not on `spool`: a transition rule on a field only runs when the old object has it too,
    # so adding or removing the template would slip through.
    assert "has(oldSelf.spool)" in rule["rule"] and "has(self.spool)" in rule["rule"]
    assert "self.spool.volumeClaimTemplate == oldSelf.spool.volumeClaimTemplate" in rule["rule"]
    assert "delete the DynoLine and create it again" in rule["message"]
    spool = spec["properties"]["spool"]
    assert not any(
        "oldSelf" in r["rule"] for _, node in _walk(spool) for r in node.get("x-kubernetes-validations", [])
    )


def test_the_spool_schema() -> None:
    from workloads.api.spool import SIZE_PATTERN

    spool = _schema(crdgen.DYNOLINE)["properties"]["spec"]["properties"]["spool"]
    assert "default" not in spool  # absent stays absent: an emptyDir, as before the field existed
    assert spool["properties"]["sizeLimit"]["pattern"] == SIZE_PATTERN
    assert [r["rule"] for r in spool["x-kubernetes-validations"]] == [
        "!(has(self.sizeLimit) && has(self.volumeClaimTemplate))"
    ]
    template = spool["properties"]["volumeClaimTemplate"]
    assert template["required"] == ["spec"]
    claim = template["properties"]["spec"]
    assert claim["required"] == ["resources"]
    assert claim["properties"]["accessModes"]["default"] == ["ReadWriteOnce"]
    assert claim["properties"]["accessModes"]["items"]["enum"] == [
        "ReadWriteOnce",
        "ReadWriteOncePod",
        "ReadWriteMany",
    ]
    storage = claim["properties"]["resources"]["properties"]["requests"]["properties"]["storage"]
    assert storage["pattern"] == SIZE_PATTERN and storage["type"] == "string"
    claim_rules = {r["message"] for r in claim["x-kubernetes-validations"]}
    assert claim_rules == {
        "accessModes must not repeat a mode",
        "accessModes: ReadWriteOncePod cannot be combined with other modes",
    }
    metadata = template["properties"]["metadata"]
    assert set(metadata["properties"]) == {"labels", "annotations"}  # no name: the operator names the claim
    labels = metadata["properties"]["labels"]
    assert labels["type"] == "object" and labels["maxProperties"] == 32 and "default" not in labels
    assert (
        labels["additionalProperties"]["maxLength"] == 63
        and labels["additionalProperties"]["type"] == "string"
    )
    assert len(metadata["x-kubernetes-validations"]) == 3


def test_cel_escapes_reserved_words_and_quotes_regexes() -> None:
    assert cel.field("for") == "__for__" and cel.field("loop") == "__loop__"
    assert cel.field("sensor") == "sensor"
    assert cel.raw_string(r"^a\-b$") == r"r'^a\-b$'"
    with pytest.raises(ValueError, match="cannot quote"):
        cel.raw_string("it's")


def test_yaml_quotes_what_yaml_1_1_reads_as_booleans() -> None:
    text = crdgen.dump({"properties": {"n": 1, "k": 2, "y": 3}})
    assert "'n':" in text and "'y':" in text and "\nk:" not in text
    assert yaml.safe_load(text) == {"properties": {"n": 1, "k": 2, "y": 3}}


def _crds(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["crds", *argv])
    result: int = args.handler(args)
    return result


def test_crds_command_writes_and_checks(tmp_path: Path) -> None:
    assert _crds("-o", str(tmp_path)) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["dynoline.dev_dynolines.yaml", "dynoline.dev_sentinelrules.yaml"]
    assert _crds("-o", str(tmp_path), "--check") == 0
    (tmp_path / "dynoline.dev_dynolines.yaml").write_text("# stale\n")
    with pytest.raises(DynolineError, match="out of date"):
        _crds("-o", str(tmp_path), "--check")


def test_chart_rbac_rules_are_generated_and_current() -> None:
    from controllers import rbac

    path = REPO / "charts" / "dynoline" / "files" / rbac.RULES_FILE
    assert path.read_text() == rbac.render(), "run `dynoline crds` and commit charts/dynoline/files/"
    rules = yaml.safe_load(path.read_text())
    secrets = [r for r in rules if "secrets" in r["resources"]]
    assert secrets == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    assert not any("*" in r["verbs"] or "*" in r["resources"] for r in rules)


def test_chart_runs_one_operator_with_recreate() -> None:
    deployment = (REPO / "charts" / "dynoline" / "templates" / "deployment.yaml").read_text()
    # replicas is a value the schema limits to 0 or 1 (tests/chart/test_schema.py refuses 2)
    assert "  replicas: {{ .Values.replicas }}\n" in deployment and "    type: Recreate\n" in deployment
    assert "path: /healthz" in deployment
    values = yaml.safe_load((REPO / "charts" / "dynoline" / "values.yaml").read_text())
    assert values["operator"]["watchServerTimeoutSeconds"] > 0 and values["replicas"] == 1
