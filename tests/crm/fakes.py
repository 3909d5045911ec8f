"""Local stand-ins for Bitrix24 and Zoho CRM that follow the vendors' documented request and
response shapes and error codes, and a webhook receiver that checks signatures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from callcenter.crm.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@dataclass
class Failure:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class MemorySteps:
    """Steps of a multi-request push kept in memory (the sender keeps them in the database)."""

    def __init__(self) -> None:
        self.done: dict[str, str] = {}

    def get(self, step: str) -> str | None:
        return self.done.get(step)

    async def save(self, step: str, value: str) -> None:
        self.done[step] = value


CALL_TYPES = {1, 2, 3, 4, 5}
"""telephony.externalcall.register TYPE: outgoing, incoming, incoming redirected, callback,
informational."""
STATUS_CODES = {
    "200", "304", "603", "603-S", "403", "404", "486", "484", "503", "480", "402", "423", "OTHER"
}  # fmt: skip
"""telephony.externalcall.finish STATUS_CODE values Bitrix24 documents."""


class FakeBitrix24:
    """A portal with one inbound webhook (user 1, code ``CODE``) and the CRM methods we use."""

    USER, CODE = 1, "s3cr3tc0de"

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failures: list[Failure] = []
        self.failures_for: dict[str, list[Failure]] = {}
        self.hang = asyncio.Event()  # set: every request waits until released
        self.release = asyncio.Event()
        self.contacts: dict[int, dict[str, Any]] = {}
        self.leads: dict[int, dict[str, Any]] = {}
        self.deals: dict[int, dict[str, Any]] = {}
        self.companies: dict[int, dict[str, Any]] = {}
        self.users = {1: {"ID": "1", "NAME": "Ольга", "LAST_NAME": "Смирнова"}}
        self.statuses = {
            "DEAL_STAGE": {
                "NEW": "Новая",
                "PREPARATION": "Подготовка документов",
                "WON": "Успешна",
            },
            "STATUS": {"NEW": "Не обработан", "IN_PROCESS": "В работе"},
        }
        self.comments: list[dict[str, Any]] = []
        self.external_calls: dict[str, dict[str, Any]] = {}
        self._next = 100

    def new_id(self) -> int:
        self._next += 1
        return self._next

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(r"/rest/{user}/{code}/{method}.json", self.handle)
        return app

    def _find(self, table: dict[int, dict[str, Any]], kind: str, value: str) -> list[int]:
        return [i for i, row in table.items() if value in [v["VALUE"] for v in row.get(kind, [])]]

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await request.json()
        self.calls.append((method, params))
        if self.hang.is_set():
            await self.release.wait()
        if request.match_info["code"] != self.CODE or request.match_info["user"] != str(self.USER):
            return web.json_response(
                {
                    "error": "INVALID_CREDENTIALS",
                    "error_description": "Invalid request credentials",
                },
                status=401,
            )
        queued = self.failures_for.get(method) or self.failures
        if queued:
            failure = queued.pop(0)
            return web.json_response(failure.body, status=failure.status, headers=failure.headers)
        try:
            result = self.result(method, params)
        except KeyError:
            return web.json_response(
                {"error": "ERROR_NOT_FOUND", "error_description": "Not found"}, status=400
            )
        except ValueError as exc:
            return web.json_response(
                {"error": "ERROR_ARGUMENT", "error_description": str(exc)}, status=400
            )
        return web.json_response(
            {"result": result, "time": {"start": 1764291600.1, "finish": 1764291600.2}}
        )

    def result(self, method: str, p: dict[str, Any]) -> Any:
        if method == "crm.duplicate.findbycomm":
            table = {"CONTACT": self.contacts, "LEAD": self.leads}[p["entity_type"]]
            found = sorted({i for v in p["values"] for i in self._find(table, p["type"], v)})
            return {p["entity_type"]: found} if found else []
        if method in ("crm.contact.get", "crm.lead.get", "crm.company.get"):
            table = {"contact": self.contacts, "lead": self.leads, "company": self.companies}
            row = table[method.split(".")[1]][int(p["id"])]
            return {"ID": str(p["id"]), **row}
        if method == "crm.status.list":
            names = self.statuses.get(p["filter"]["ENTITY_ID"], {})
            return [
                {"ENTITY_ID": p["filter"]["ENTITY_ID"], "STATUS_ID": k, "NAME": v, "SORT": "10"}
                for k, v in names.items()
            ]
        if method == "user.get":
            if "ID" in p:
                return [self.users[int(p["ID"])]]
            wanted = p["FILTER"]["EMAIL"].lower()
            return [u for u in self.users.values() if u.get("EMAIL", "").lower() == wanted]
        if method == "crm.deal.list":
            contact = str(p["filter"]["CONTACT_ID"])
            rows = [
                {"ID": str(i), **d} for i, d in self.deals.items() if d["CONTACT_ID"] == contact
            ]
            return sorted(rows, key=lambda d: d.get("DATE_MODIFY", ""), reverse=True)
        if method == "crm.lead.add":
            self.leads[lead_id := self.new_id()] = p["fields"]
            return lead_id
        if method == "crm.deal.add":
            self.deals[deal_id := self.new_id()] = {**p["fields"], "STAGE_ID": "NEW"}
            return deal_id
        if method == "crm.timeline.comment.add":
            self.comments.append(p["fields"])
            return self.new_id()
        if method == "telephony.externalcall.register":
            if p["TYPE"] not in CALL_TYPES:
                raise ValueError(f"TYPE {p['TYPE']!r}")
            call_id = f"externalCall.{self.new_id()}"
            self.external_calls[call_id] = {"register": p}
            return {"CALL_ID": call_id, "CRM_CREATED_LEAD": None, "CRM_ENTITY_TYPE": "CONTACT"}
        if method == "telephony.externalcall.finish":
            if p.get("STATUS_CODE", "200") not in STATUS_CODES:
                raise ValueError(f"STATUS_CODE {p['STATUS_CODE']!r}")
            self.external_calls[p["CALL_ID"]]["finish"] = p
            return {"CALL_ID": p["CALL_ID"], "CALL_DURATION": p["DURATION"]}
        if method == "telephony.externalCall.attachRecord":
            self.external_calls[p["CALL_ID"]]["record"] = p
            return {"FILE_ID": self.new_id()}
        raise KeyError(method)

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]


QUERY_LIMIT = Failure(
    503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
)
EXPIRED = Failure(
    401, {"error": "expired_token", "error_description": "The access token provided has expired."}
)
SERVER_ERROR = Failure(500, {"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal"})


class FakeZoho:
    """accounts.zoho.* token endpoint and the /crm/v7 API in one server."""

    CLIENT_ID, CLIENT_SECRET, REFRESH = "1000.ABC", "zoho-client-secret", "1000.refresh.xyz"

    def __init__(self) -> None:
        self.valid_tokens: set[str] = set()
        self.token_requests = 0
        self.requests: list[tuple[str, str, Any]] = []
        self.failures: list[Failure] = []
        self.contacts: list[dict[str, Any]] = []
        self.deals: list[dict[str, Any]] = []
        self.records: dict[str, list[dict[str, Any]]] = {"Leads": [], "Notes": [], "Calls": []}
        self._next = 5_000_000

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/oauth/v2/token", self.token)
        app.router.add_route("*", r"/crm/v7/{path:.+}", self.api)
        return app

    def expire_tokens(self) -> None:
        self.valid_tokens.clear()

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.token_requests += 1
        if (
            form.get("grant_type") != "refresh_token"
            or form.get("client_id") != self.CLIENT_ID
            or form.get("client_secret") != self.CLIENT_SECRET
        ):
            return web.json_response({"error": "invalid_client"})
        if form.get("refresh_token") != self.REFRESH:
            return web.json_response({"error": "invalid_code"})
        token = f"1000.token{self.token_requests}"
        self.valid_tokens.add(token)
        return web.json_response(
            {
                "access_token": token,
                "scope": "ZohoCRM.modules.ALL",
                "api_domain": "https://www.zohoapis.com",
                "token_type": "Bearer",
                "expires_in": 3600,
            }
        )

    async def api(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        body = await request.json() if request.can_read_body else None
        self.requests.append((request.method, path, body or dict(request.query)))
        auth = request.headers.get("Authorization", "")
        if (
            not auth.startswith("Zoho-oauthtoken ")
            or auth.split(" ", 1)[1] not in self.valid_tokens
        ):
            return web.json_response(
                {
                    "code": "INVALID_TOKEN",
                    "details": {},
                    "message": "invalid oauth token",
                    "status": "error",
                },
                status=401,
            )
        if self.failures:
            failure = self.failures.pop(0)
            return web.json_response(failure.body, status=failure.status, headers=failure.headers)
        if request.method == "GET" and path == "Contacts/search":
            key, value = next(iter(request.query.items()))
            field_name = {"phone": "Phone", "email": "Email"}[key]
            found = [c for c in self.contacts if c.get(field_name) == value]
            return self._data(found)
        related = path.split("/")
        if request.method == "GET" and len(related) == 3 and related[::2] == ["Contacts", "Deals"]:
            if "fields" not in request.query:  # v7 wants the fields of a related list named
                return web.json_response(
                    {
                        "code": "REQUIRED_PARAM_MISSING",
                        "details": {"param": "fields"},
                        "message": "One of the expected parameter is missing",
                        "status": "error",
                    },
                    status=400,
                )
            rows = [d for d in self.deals if d["Contact_Name"]["id"] == related[1]]
            return self._data(rows)
        if request.method == "POST" and path in self.records:
            record = body["data"][0]
            if path == "Calls" and record.get("Call_Type") not in ("Inbound", "Outbound", "Missed"):
                return web.json_response(
                    {
                        "data": [
                            {
                                "code": "INVALID_DATA",
                                "details": {"api_name": "Call_Type"},
                                "message": "invalid data",
                                "status": "error",
                            }
                        ]
                    },
                    status=400,
                )
            self._next += 1
            self.records[path].append({"id": str(self._next), **record})
            return web.json_response(
                {
                    "data": [
                        {
                            "code": "SUCCESS",
                            "details": {
                                "id": str(self._next),
                                "Created_Time": "2026-11-28T01:00:00+03:00",
                            },
                            "message": "record added",
                            "status": "success",
                        }
                    ]
                },
                status=201,
            )
        return web.json_response(
            {
                "code": "INVALID_URL_PATTERN",
                "details": {},
                "message": "Please check if the URL trying to access is a correct one",
                "status": "error",
            },
            status=404,
        )

    def _data(self, rows: list[dict[str, Any]]) -> web.Response:
        if not rows:
            return web.Response(status=204)
        return web.json_response(
            {
                "data": rows,
                "info": {"per_page": 200, "count": len(rows), "page": 1, "more_records": False},
            }
        )


class Receiver:
    """A subscriber's endpoint: verifies every request's signature with the shared secret."""

    def __init__(self) -> None:
        self.secret = ""
        self.accepted: list[dict[str, Any]] = []
        self.rejected: list[bytes] = []
        self.statuses: list[int] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self.hook)
        return app

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(
            self.secret,
            body,
            request.headers.get(TIMESTAMP_HEADER, ""),
            request.headers.get(SIGNATURE_HEADER, ""),
        ):
            self.rejected.append(body)
            return web.Response(status=400, text="bad signature")
        if self.statuses:
            return web.Response(status=self.statuses.pop(0))
        self.accepted.append({"headers": dict(request.headers), "event": json.loads(body)})
        return web.Response(status=204)
