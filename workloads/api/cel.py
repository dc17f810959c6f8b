"""CEL twins of the models' validators, declared on the validator itself.

The CRDs are generated from these models (controllers/crdgen.py), and the API server should refuse what
pydantic refuses. A pydantic validator is Python the API server cannot run, so each one carries its twin:
`@twin(...)` with the CEL rules (`x-kubernetes-validations`) that say the same thing, or `@schema_twin(...)`
when plain schema keywords say it (or the JSON schema already does). The generator puts a model
validator's rules on the object and a field validator's (or an `Annotated` validator's) on the field, and
lists any validator that has neither, so a new check cannot reach the models without reaching the CRD.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

Rule = dict[str, str]  # {"rule": <CEL expression>, "message": <shown by the API server>}
F = TypeVar("F", bound=Callable[..., Any])

_RULES = "__dynoline_cel__"
_SCHEMA = "__dynoline_schema__"

CEL_RESERVED = {
    "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if",
    "import", "let", "loop", "package", "namespace", "return", "var", "void", "while",
}  # fmt: skip


def rule(expression: str, message: str) -> Rule:
    return {"rule": expression, "message": message}


def twin(*rules: Rule) -> Callable[[F], F]:
    """Declare the CEL rules that say in the CRD what the decorated validator says in Python.

    Put it directly on the function (under `@classmethod` and the pydantic decorator)."""

    def mark(func: F) -> F:
        setattr(func, _RULES, tuple(rules))
        return func

    return mark


def schema_twin(**keywords: Any) -> Callable[[F], F]:
    """The validator's twin is schema keywords (e.g. `x-kubernetes-list-type: set`), or none at all when
    the JSON schema already says it (JSON has no NaN, so a finite-number check needs nothing)."""

    def mark(func: F) -> F:
        setattr(func, _SCHEMA, {k.replace("_", "-"): v for k, v in keywords.items()})
        return func

    return mark


def rules_of(func: Any) -> tuple[Rule, ...]:
    return tuple(getattr(func, _RULES, ()))


def schema_of(func: Any) -> Mapping[str, Any]:
    return dict(getattr(func, _SCHEMA, {}))


def has_twin(func: Any) -> bool:
    return hasattr(func, _RULES) or hasattr(func, _SCHEMA)


def field(name: str) -> str:
    """How Kubernetes CEL spells a property name (reserved words are escaped as `__word__`)."""
    return f"__{name}__" if name in CEL_RESERVED else name


def raw_string(text: str) -> str:
    """A CEL raw string literal (no escape processing), for regular expressions."""
    if "'" in text or "\n" in text:
        raise ValueError(f"cannot quote {text!r} as a CEL raw string")
    return f"r'{text}'"
