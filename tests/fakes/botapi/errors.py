"""Bot API error replies, worded as telegram-bot-api words them."""

from __future__ import annotations

from typing import Any

STATUS_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class ApiError(Exception):
    """A failed call: becomes `{"ok": false, "error_code": ..., "description": ...}`."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(reason: str) -> ApiError:
    return ApiError(400, f"Bad Request: {reason}")


def forbidden(reason: str) -> ApiError:
    return ApiError(403, f"Forbidden: {reason}")


def retry_after(seconds: int) -> ApiError:
    return ApiError(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})


def for_status(status: int, description: str | None = None, retry: int | None = None) -> ApiError:
    """An error for fault injection, with the real server's default wording."""
    if status == 429:
        seconds = retry if retry is not None else 1
        if description is None:
            return retry_after(seconds)
        return ApiError(429, description, {"retry_after": seconds})
    if description is None:
        description = STATUS_DESCRIPTIONS.get(status, "Internal Server Error")
    return ApiError(status, description)
