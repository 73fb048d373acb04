"""Domain errors that carry their HTTP status and a message the user can act on."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class: rendered by one handler as ``{"detail": message, ...extra}``."""

    status_code = 400

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class NotFound(DomainError):
    status_code = 404


class Unauthorized(DomainError):
    status_code = 401


class Forbidden(DomainError):
    status_code = 403


class Conflict(DomainError):
    status_code = 409


class PayloadTooLarge(DomainError):
    status_code = 413


class InvalidInput(DomainError):
    status_code = 422
