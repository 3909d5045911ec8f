"""Domain errors with a stable machine-readable code, used by the API, logs and tests alike."""

from __future__ import annotations


class DomainError(Exception):
    """A refused operation; nothing was changed."""

    code = "domain-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidPhone(DomainError):
    code = "invalid-phone"


class InvalidEmail(DomainError):
    code = "invalid-email"


class InvalidTelegram(DomainError):
    code = "invalid-telegram"


class DuplicateIdentity(DomainError):
    code = "duplicate-identity"


class SelfMerge(DomainError):
    code = "self-merge"


class AlreadyMerged(DomainError):
    code = "already-merged"


class NotFound(DomainError):
    code = "not-found"
