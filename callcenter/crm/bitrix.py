"""Bitrix24 through an inbound webhook: ``https://<portal>/rest/<user>/<code>/<method>.json``.

Errors come as ``{"error": "...", "error_description": "..."}``: QUERY_LIMIT_EXCEEDED (HTTP 503,
more than two requests a second) and 5xx are retried; expired or revoked credentials
(expired_token, INVALID_CREDENTIALS, NO_AUTH_FOUND, 401) are retried too, because an admin fixes
them in the settings and nothing should be lost meanwhile; any other error is permanent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from callcenter.crm.base import CallPush, CrmProfile, MessagePush, Ref, Steps, TicketPush, money
from callcenter.outbox import PermanentFailure, RetryLater

TIMEOUT = aiohttp.ClientTimeout(total=15)
AUTH_ERRORS = frozenset({"expired_token", "invalid_token", "INVALID_CREDENTIALS", "NO_AUTH_FOUND"})
WON = "S"  # STAGE_SEMANTIC_ID of a won deal
OUTGOING, INCOMING = 1, 2  # telephony.externalcall.register TYPE
ANSWERED, MISSED = "200", "304"  # telephony.externalcall.finish STATUS_CODE
UNANSWERED_STATUS = {"no_answer": MISSED, "busy": "486", "failed": "503"}
"""An outbound call that did not reach the customer: no answer, busy, direction unavailable."""
STAGE_NAMES_SECONDS = 3600.0


def _status(call: CallPush) -> str:
    if call.answered:
        return ANSWERED
    return UNANSWERED_STATUS.get(call.outcome, MISSED) if call.outbound else MISSED


class BitrixError(Exception):
    pass


class Bitrix24:
    name = "bitrix24"

    def __init__(
        self,
        http: aiohttp.ClientSession,
        portal: str,
        user_id: int,
        code: str,
        *,
        users: Mapping[str, int] | None = None,
    ) -> None:
        self.http = http
        self.base = f"{portal.rstrip('/')}/rest/{user_id}/{code}/"
        self.user_id = user_id
        self.users = dict(users or {})
        """Our agents' logins → their Bitrix24 user ids, as the admin set them."""
        self._stages: dict[str, tuple[float, dict[str, str]]] = {}
        self._by_email: dict[str, tuple[float, int | None]] = {}

    async def agent_user(self, agent: str) -> int:
        """The Bitrix24 user of one of our agents: as set in ``bitrix24_users``, else the
        portal's active user whose email is the agent's login, else the webhook's user."""
        if not agent:
            return self.user_id
        if agent in self.users:
            return self.users[agent]
        if "@" not in agent:
            return self.user_id
        cached = self._by_email.get(agent.lower())
        if cached is None or time.monotonic() - cached[0] > STAGE_NAMES_SECONDS:
            found = await self.call("user.get", {"FILTER": {"EMAIL": agent, "ACTIVE": True}})
            user = int(found[0]["ID"]) if isinstance(found, list) and found else None
            cached = (time.monotonic(), user)
            self._by_email[agent.lower()] = cached
        return cached[1] if cached[1] is not None else self.user_id

    async def call(
        self, method: str, params: dict[str, Any], timeout: aiohttp.ClientTimeout = TIMEOUT
    ) -> Any:
        """One REST method; its ``result``."""
        try:
            async with self.http.post(
                f"{self.base}{method}.json", json=params, timeout=timeout
            ) as response:
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryLater(f"bitrix24 {method}: {str(exc) or type(exc).__name__}") from exc
        if status < 300 and isinstance(body, dict) and "result" in body:
            return body["result"]
        error = body.get("error", "") if isinstance(body, dict) else ""
        detail = body.get("error_description", "") if isinstance(body, dict) else ""
        message = f"bitrix24 {method}: HTTP {status} {error} {detail}".strip()
        if error == "QUERY_LIMIT_EXCEEDED":
            raise RetryLater(message, retry_after=1.0)
        if error in AUTH_ERRORS or status in (401, 408, 429) or status >= 500 or not error:
            raise RetryLater(message)
        raise PermanentFailure(message)

    async def _find(self, entity: str, phone: str, email: str) -> str | None:
        for kind, value in (("PHONE", phone), ("EMAIL", email)):
            if not value:
                continue
            found = await self.call(
                "crm.duplicate.findbycomm",
                {"entity_type": entity, "type": kind, "values": [value]},
            )
            ids = found.get(entity) if isinstance(found, dict) else None
            if ids:
                return str(ids[0])
        return None

    async def _manager(self, user_id: object) -> str:
        if not user_id:
            return ""
        users = await self.call("user.get", {"ID": user_id})
        if not users:
            return ""
        return " ".join(filter(None, (users[0].get("NAME"), users[0].get("LAST_NAME"))))

    async def _company(self, company_id: object) -> str:
        if not company_id or str(company_id) == "0":
            return ""
        company = await self.call("crm.company.get", {"id": company_id})
        return str(company.get("TITLE") or "")

    async def _stage_name(self, entity: str, stage_id: str) -> str:
        """The name admins gave a deal stage or lead status (the id if it has none)."""
        if not stage_id:
            return ""
        cached = self._stages.get(entity)
        if cached is None or cached[0] < time.monotonic():
            rows = await self.call("crm.status.list", {"filter": {"ENTITY_ID": entity}})
            names = {str(r.get("STATUS_ID")): str(r.get("NAME") or "") for r in rows or []}
            cached = (time.monotonic() + STAGE_NAMES_SECONDS, names)
            self._stages[entity] = cached
        return cached[1].get(stage_id) or stage_id

    async def _deals(self, contact_id: str) -> tuple[str, str]:
        deals = await self.call(
            "crm.deal.list",
            {
                "filter": {"CONTACT_ID": contact_id},
                "select": ["ID", "STAGE_ID", "STAGE_SEMANTIC_ID", "OPPORTUNITY", "CURRENCY_ID"],
                "order": {"DATE_MODIFY": "DESC"},
            },
        )
        if not deals:
            return "", ""
        won = [d for d in deals if d.get("STAGE_SEMANTIC_ID") == WON]
        total = sum(float(d.get("OPPORTUNITY") or 0) for d in won)
        currency = next((d.get("CURRENCY_ID") or "" for d in won), "")
        stage = str(deals[0].get("STAGE_ID") or "")
        pipeline = stage.split(":")[0].removeprefix("C") if ":" in stage else ""
        entity = f"DEAL_STAGE_{pipeline}" if pipeline else "DEAL_STAGE"
        return await self._stage_name(entity, stage), money(total, currency) if won else ""

    async def lookup(self, *, phone: str = "", email: str = "") -> CrmProfile | None:
        contact_id = await self._find("CONTACT", phone, email)
        if contact_id is not None:
            contact = await self.call("crm.contact.get", {"id": contact_id})
            company, manager, (stage, value) = await asyncio.gather(
                self._company(contact.get("COMPANY_ID")),
                self._manager(contact.get("ASSIGNED_BY_ID")),
                self._deals(contact_id),
            )
            name = " ".join(filter(None, (contact.get("NAME"), contact.get("LAST_NAME"))))
            return CrmProfile(f"contact:{contact_id}", name, company, manager, stage, value)
        lead_id = await self._find("LEAD", phone, email)
        if lead_id is None:
            return None
        lead = await self.call("crm.lead.get", {"id": lead_id})
        name = " ".join(filter(None, (lead.get("NAME"), lead.get("LAST_NAME"))))
        return CrmProfile(
            f"lead:{lead_id}",
            name,
            str(lead.get("COMPANY_TITLE") or ""),
            await self._manager(lead.get("ASSIGNED_BY_ID")),
            await self._stage_name("STATUS", str(lead.get("STATUS_ID") or "")),
        )

    async def push_ticket(self, ticket: TicketPush) -> Ref:
        """A deal for a customer the CRM knows as a contact, else a lead."""
        contact = ticket.contact
        phone = contact.phones[0] if contact.phones else ""
        email = contact.emails[0] if contact.emails else ""
        title = f"#{ticket.ticket_id} {ticket.subject}".strip()[:255]
        contact_id = await self._find("CONTACT", phone, email)
        if contact_id is not None:
            fields = {"TITLE": title, "CONTACT_ID": contact_id, "COMMENTS": ticket.text}
            return Ref("deal", str(await self.call("crm.deal.add", {"fields": fields})))
        fields = {
            "TITLE": title,
            "NAME": contact.name,
            "COMMENTS": ticket.text,
            "SOURCE_DESCRIPTION": ticket.channel,
            "PHONE": [{"VALUE": p, "VALUE_TYPE": "WORK"} for p in contact.phones],
            "EMAIL": [{"VALUE": e, "VALUE_TYPE": "WORK"} for e in contact.emails],
        }
        return Ref("lead", str(await self.call("crm.lead.add", {"fields": fields})))

    async def push_message(self, message: MessagePush, parent: Ref) -> Ref:
        text = (
            f"Ответ оператора ({message.channel}):\n{message.text}"
            if message.outbound
            else message.text
        )
        fields = {"ENTITY_ID": parent.id, "ENTITY_TYPE": parent.type, "COMMENT": text}
        result = await self.call("crm.timeline.comment.add", {"fields": fields})
        return Ref("comment", str(result))

    async def push_call(self, call: CallPush, steps: Steps) -> Ref:
        """Register to the agent who took the call, finish, attach the recording; a retry
        resumes after the last step done."""
        user = steps.get("user")
        if user is None:
            user = str(await self.agent_user(call.agent))
            await steps.save("user", user)
        call_id = steps.get("register")
        if call_id is None:
            registered = await self.call(
                "telephony.externalcall.register",
                {
                    "USER_ID": int(user),
                    "PHONE_NUMBER": call.phone,
                    "TYPE": OUTGOING if call.outbound else INCOMING,
                    "CALL_START_DATE": call.started_at,
                    "CRM_CREATE": 1,
                    "SHOW": 0,
                },
            )
            call_id = str(registered["CALL_ID"])
            await steps.save("register", call_id)
        if steps.get("finish") is None:
            finish = {
                "CALL_ID": call_id,
                "USER_ID": int(user),
                "DURATION": call.duration_seconds,
                "STATUS_CODE": _status(call),
                "ADD_TO_CHAT": 0,
            }
            await self.call("telephony.externalcall.finish", finish)
            await steps.save("finish", call_id)
        if call.recording_url:
            await self.call(
                "telephony.externalCall.attachRecord",
                {
                    "CALL_ID": call_id,
                    "FILENAME": f"call-{call.interaction_id}.wav",
                    "RECORD_URL": call.recording_url,
                },
            )
        return Ref("call", call_id)
