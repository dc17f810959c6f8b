"""Pydantic models → Kubernetes structural OpenAPI v3 schemas, with each validator's CEL twin attached.

Kubernetes wants a *structural* schema: no `$ref`, no `additionalProperties: false`, no types inside
`oneOf`. So references are inlined, `X | None` becomes an optional X, and a discriminated union becomes one
object with every variant's fields plus generated CEL rules (`x-kubernetes-validations`) that say which
fields each variant needs and takes. Each pydantic validator's twin is declared on the validator
(workloads/api/cel.py); CEL with no validator (a transition rule) sits in the model's `json_schema_extra`.
`uncovered_validators()` lists any validator without a twin, so a new check cannot slip past the CRD (a test
asserts the list is empty). Unknown fields are refused by the API server's strict field validation
(kubectl's default), since structural schemas cannot say `additionalProperties: false`.
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, PlainValidator, WrapValidator
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

from workloads.api import cel

Rule = cel.Rule


class _WithFactoryDefaults(GenerateJsonSchema):
    """pydantic leaves `default_factory` defaults out of the schema; the CRD should show them."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            return factory()  # type: ignore[call-arg]
        return super().get_default_value(schema)


def models(root: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """Every pydantic model reachable from `root` through its fields (root first)."""
    seen: set[type[BaseModel]] = set()
    stack = [root]
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        yield cls
        for info in cls.model_fields.values():
            stack.extend(_model_types(info.annotation))


def _model_types(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            yield from _model_types(arg)


def _model_rules(cls: type[BaseModel]) -> list[Rule]:
    """The CEL twins of the model's own (and inherited) model validators."""
    return [
        r for dec in cls.__pydantic_decorators__.model_validators.values() for r in cel.rules_of(dec.func)
    ]


def _field_validators(cls: type[BaseModel], name: str) -> list[Any]:
    """Functions validating field `name`: `@field_validator`s and `Annotated[T, AfterValidator(f)]`."""
    found = [
        dec.func for dec in cls.__pydantic_decorators__.field_validators.values() if name in dec.info.fields
    ]
    info = cls.model_fields.get(name)
    return found + (annotated_validators(info) if info is not None else [])


def _field_rules(cls: type[BaseModel], name: str) -> list[Rule]:
    return [r for func in _field_validators(cls, name) for r in cel.rules_of(func)]


def _field_schema(cls: type[BaseModel], name: str) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for func in _field_validators(cls, name):
        extra.update(cel.schema_of(func))
    return extra


_VALIDATOR_TYPES = (AfterValidator, BeforeValidator, PlainValidator, WrapValidator)


def annotated_validators(info: FieldInfo) -> list[Any]:
    """Functions attached with `Annotated[T, AfterValidator(f)]`, also inside `T | None` and lists."""
    found = [m.func for m in info.metadata if isinstance(m, _VALIDATOR_TYPES)]
    stack: list[Any] = [info.annotation]
    while stack:
        current = stack.pop()
        if typing.get_origin(current) is typing.Annotated:
            found += [m.func for m in getattr(current, "__metadata__", ()) if isinstance(m, _VALIDATOR_TYPES)]
        stack.extend(typing.get_args(current))
    return found


def uncovered_validators(root: type[BaseModel]) -> list[str]:
    """pydantic validators reachable from `root` that have no CEL twin: each is a check the CRD misses."""
    missing: list[str] = []
    for cls in models(root):
        decorators = cls.__pydantic_decorators__
        for name, model_dec in decorators.model_validators.items():
            if not cel.has_twin(model_dec.func):
                missing.append(f"{cls.__name__}.{name}")
        for name, field_dec in decorators.field_validators.items():
            if not cel.has_twin(field_dec.func):
                missing.extend(f"{cls.__name__}.{name} ({fld})" for fld in field_dec.info.fields)
        for fld, info in cls.model_fields.items():
            for func in annotated_validators(info):
                if not cel.has_twin(func):
                    missing.append(f"{cls.__name__}.{fld} ({getattr(func, '__name__', func)})")
    return missing


class _Converter:
    """pydantic JSON schema (draft 2020-12 with `$defs`) → Kubernetes structural OpenAPI v3."""

    def __init__(self, root: type[BaseModel], defs: Mapping[str, Any]) -> None:
        self.defs = defs
        self.by_title = {cls.__name__: cls for cls in models(root)}

    def convert(self, node: Mapping[str, Any]) -> dict[str, Any]:
        node = dict(node)
        if "$ref" in node:
            target = self.defs[node.pop("$ref").split("/")[-1]]
            return self.convert({**target, **node})
        if "anyOf" in node:
            options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
            if len(options) != 1:
                raise ValueError(f"unions other than `X | None` need a discriminator: {options}")
            if node.get("default", ...) is None:
                del node["default"]
            return self.convert({**options[0], **node})
        if "oneOf" in node:
            return self._merge_union(node)
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("title", "discriminator"):
                continue
            if key == "additionalProperties":
                if isinstance(value, Mapping):  # a map's value schema; `false` (extra="forbid") is dropped
                    out[key] = self.convert(value)
                continue
            if key == "const":
                out["enum"] = [value]
                out.setdefault("type", "string" if isinstance(value, str) else "number")
            elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
                out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
                out[key] = True
            elif key == "properties":
                out[key] = {name: self.convert(sub) for name, sub in value.items()}
            elif key == "items":
                out[key] = self.convert(value)
            elif key == "default" and value is None:
                continue
            else:
                out[key] = copy.deepcopy(value)
        cls = self.by_title.get(node.get("title", ""))
        if cls is not None and out.get("type") == "object":
            # The validators' twins, then rules with no validator (json_schema_extra: transition rules).
            rules = _model_rules(cls) + list(out.get("x-kubernetes-validations", []))
            if rules:
                out["x-kubernetes-validations"] = rules
            for name, sub in out.get("properties", {}).items():
                py_name = next((n for n, f in cls.model_fields.items() if (f.alias or n) == name), name)
                extra = _field_rules(cls, py_name)
                if extra:
                    sub["x-kubernetes-validations"] = list(sub.get("x-kubernetes-validations", [])) + extra
                sub.update(_field_schema(cls, py_name))
        return out

    def _merge_union(self, node: Mapping[str, Any]) -> dict[str, Any]:
        disc = node.get("discriminator", {}).get("propertyName")
        if not disc:
            raise ValueError("a oneOf without a discriminator cannot become a structural schema")
        variants = [self.convert(v) for v in node["oneOf"]]
        noun = str(node.get("title", "object")).lower()
        tags: list[str] = []
        props: dict[str, Any] = {}
        for variant in variants:
            tag = variant["properties"][disc]["enum"][0]
            tags.append(tag)
            for name, sub in variant["properties"].items():
                if name == disc:
                    continue
                shape = {k: v for k, v in sub.items() if k not in ("default", "description")}
                known = props.get(name)
                if (
                    known is not None
                    and {k: v for k, v in known.items() if k not in ("default", "description")} != shape
                ):
                    raise ValueError(f"{noun}.{name} differs between variants; rename it in one of them")
                # Variant-specific defaults cannot live in the merged schema (they would leak into the
                # other variants); pydantic applies them when the operator reads the object.
                props.setdefault(name, {k: v for k, v in sub.items() if k != "default"})
        rules: list[Rule] = []
        for variant, tag in zip(variants, tags, strict=True):
            guard = f"self.{cel.field(disc)} != '{tag}'"
            needed = [n for n in variant.get("required", []) if n != disc]
            if needed:
                rules.append(
                    {
                        "rule": f"{guard} || ("
                        + " && ".join(f"has(self.{cel.field(n)})" for n in needed)
                        + ")",
                        "message": f"a {tag} {noun} needs {', '.join(needed)}",
                    }
                )
            foreign = [n for n in props if n not in variant["properties"]]
            if foreign:
                rules.append(
                    {
                        "rule": f"{guard} || !("
                        + " || ".join(f"has(self.{cel.field(n)})" for n in foreign)
                        + ")",
                        "message": f"a {tag} {noun} does not take {', '.join(foreign)}",
                    }
                )
            for own in variant.get("x-kubernetes-validations", []):
                rules.append({**own, "rule": f"{guard} || ({own['rule']})"})
        merged: dict[str, Any] = {
            "type": "object",
            "required": [disc],
            "properties": {disc: {"type": "string", "enum": tags}, **props},
            "x-kubernetes-validations": rules,
        }
        if "description" in node:
            merged["description"] = node["description"]
        # No default for a union either: a defaulted variant's fields would stay behind when a user later
        # applies another variant, and the rules above would then refuse the change.
        return merged


def openapi(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of one model, as a CRD wants it."""
    raw = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_WithFactoryDefaults)
    defs = raw.pop("$defs", {})
    return _Converter(model, defs).convert(raw)
