"""One error type for everything a user can get wrong, so the CLI can print it as one line and exit."""


class DynolineError(Exception):
    """A user-facing failure: the message says what is wrong and where, on one line."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class DatabaseUnavailable(DynolineError):
    """The database could not be reached; callers must fail, never fall back to made-up data."""

    exit_code = 4
