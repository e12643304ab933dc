"""Domain errors raised by services and turned into answers by the web layer."""

from __future__ import annotations


class ValidationFailed(Exception):
    """User input broke a rule; ``errors`` maps each field to a translated message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors

    @property
    def summary(self) -> str:
        """All the messages in one line, for a flash or an error page."""
        return "; ".join(self.errors.values())


class Forbidden(Exception):
    """The user may not do this; ``message`` is translated and shown to them."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TooManyAttempts(Exception):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class InvalidCredentials(Exception):
    """Unknown email or wrong password: deliberately one error, so neither is revealed."""


class UnstorableText(Exception):
    """A text holds a NUL character, which PostgreSQL can neither store nor compare; answered 400.

    Refused where any query is sent (``ideaforge.db.engine``), on every backend alike."""


class Conflict(Exception):
    """The action does not fit the current state (wrong phase, budget spent...); answered 409."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
