"""One error type for everything a user can get wrong, so the CLI can print it as one line and exit."""

from __future__ import annotations

from pydantic import ValidationError


class DynolineError(Exception):
    """A user-facing failure: the message says what is wrong and where, on one line."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class DatabaseUnavailable(DynolineError):
    """The database could not be reached; callers must fail, never fall back to made-up data."""

    exit_code = 4


def format_validation_error(exc: ValidationError, where: str = "") -> str:
    """Pydantic's multi-line report as one line: `<where> field.path: message; ...`."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    prefix = f"{where}: " if where else ""
    return f"{prefix}invalid {exc.title}: " + "; ".join(parts)
