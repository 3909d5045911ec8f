"""Zoho CRM (API v7) with a self-client's refresh token.

The access token is fetched from ``<accounts>/oauth/v2/token`` (grant_type=refresh_token) and
sent as ``Authorization: Zoho-oauthtoken <token>``; a 401 (INVALID_TOKEN, expired) refreshes it
once and repeats the request. 429 and 5xx are retried through the outbox; search answers 204
when nothing matches.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from callcenter.crm.base import CallPush, CrmProfile, MessagePush, Ref, Steps, TicketPush, money
from callcenter.outbox import PermanentFailure, RetryLater

TIMEOUT = aiohttp.ClientTimeout(total=15)
WON = "Closed Won"

UNANSWERED = {"no_answer": "не ответил", "busy": "занято", "failed": "не дозвонились"}
"""Why an outbound call did not reach the customer, in its subject (Zoho's Call_Type has no
such values: Inbound, Outbound and Missed only)."""


def _subject(call: CallPush) -> str:
    if not call.outbound:
        return f"{'Входящий' if call.answered else 'Пропущенный'} звонок {call.phone}"
    if call.answered:
        return f"Исходящий звонок {call.phone}"
    return f"Исходящий звонок {call.phone}: {UNANSWERED.get(call.outcome, 'без ответа')}"


class ZohoCrm:
    name = "zoho"

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        accounts_url: str,
        api_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
    ) -> None:
        self.http = http
        self.accounts_url = accounts_url.rstrip("/")
        self.api_url = api_url.rstrip("/")
        self._credentials = {
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
            "grant_type": "refresh_token",
        }
        self._token = ""
        self._refreshing: asyncio.Lock = asyncio.Lock()

    async def _refresh(self, stale: str) -> str:
        async with self._refreshing:
            if self._token != stale:  # another request refreshed it meanwhile
                return self._token
            try:
                async with self.http.post(
                    f"{self.accounts_url}/oauth/v2/token",
                    data=self._credentials,
                    timeout=TIMEOUT,
                ) as response:
                    body = await response.json(content_type=None)
                    status = response.status
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise RetryLater(f"zoho token: {str(exc) or type(exc).__name__}") from exc
            if status >= 300 or not isinstance(body, dict) or "access_token" not in body:
                error = body.get("error", "") if isinstance(body, dict) else ""
                raise RetryLater(f"zoho token: HTTP {status} {error}".strip())
            self._token = str(body["access_token"])
            return self._token

    async def request(
        self, method: str, path: str, *, params: dict[str, str] | None = None, data: Any = None
    ) -> Any:
        """A CRM API call; its JSON, or None for 204."""
        token = self._token or await self._refresh("")
        for attempt in (1, 2):
            try:
                async with self.http.request(
                    method,
                    f"{self.api_url}/crm/v7/{path}",
                    params=params,
                    json=data,
                    headers={"Authorization": f"Zoho-oauthtoken {token}"},
                    timeout=TIMEOUT,
                ) as response:
                    status = response.status
                    body = None if status == 204 else await response.json(content_type=None)
                    retry_after = response.headers.get("Retry-After", "")
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise RetryLater(f"zoho {path}: {str(exc) or type(exc).__name__}") from exc
            if status == 401 and attempt == 1:
                token = await self._refresh(token)
                continue
            break
        if status < 300:
            return body
        code = body.get("code", "") if isinstance(body, dict) else ""
        message = f"zoho {method} {path}: HTTP {status} {code}".strip()
        if status in (401, 408, 429) or status >= 500:
            raise RetryLater(message, float(retry_after) if retry_after.isdigit() else None)
        raise PermanentFailure(message)

    async def _contact(self, phone: str, email: str) -> dict[str, Any] | None:
        for key, value in (("phone", phone), ("email", email)):
            if value:
                found = await self.request("GET", "Contacts/search", params={key: value})
                if found and found.get("data"):
                    return found["data"][0]
        return None

    async def _deals(self, contact_id: str) -> tuple[str, str]:
        found = await self.request(  # the contact's related list of deals
            "GET",
            f"Contacts/{contact_id}/Deals",
            params={"fields": "Stage,Amount,Currency,Modified_Time"},
        )
        deals = (found or {}).get("data") or []
        if not deals:
            return "", ""
        deals.sort(key=lambda d: d.get("Modified_Time") or "", reverse=True)
        won = [d for d in deals if d.get("Stage") == WON]
        total = sum(float(d.get("Amount") or 0) for d in won)
        currency = next((d.get("Currency") or "" for d in won), "")
        return str(deals[0].get("Stage") or ""), money(total, currency) if won else ""

    async def lookup(self, *, phone: str = "", email: str = "") -> CrmProfile | None:
        contact = await self._contact(phone, email)
        if contact is None:
            return None
        stage, value = await self._deals(str(contact["id"]))
        return CrmProfile(
            crm_id=f"Contacts:{contact['id']}",
            name=str(contact.get("Full_Name") or ""),
            company=str((contact.get("Account_Name") or {}).get("name") or ""),
            manager=str((contact.get("Owner") or {}).get("name") or ""),
            deal_stage=stage,
            lifetime_value=value,
        )

    async def _create(self, module: str, record: dict[str, Any]) -> Ref:
        body = await self.request("POST", module, data={"data": [record]})
        result = (body or {}).get("data") or [{}]
        if result[0].get("status") != "success":
            raise PermanentFailure(f"zoho {module}: {result[0].get('code', 'no result')}")
        return Ref(module, str(result[0]["details"]["id"]))

    async def push_ticket(self, ticket: TicketPush) -> Ref:
        contact = ticket.contact
        phone = contact.phones[0] if contact.phones else ""
        email = contact.emails[0] if contact.emails else ""
        record = {
            "Last_Name": contact.name or phone or email or f"#{ticket.ticket_id}",
            "Phone": phone or None,
            "Email": email or None,
            "Description": f"#{ticket.ticket_id} {ticket.subject}\n\n{ticket.text}".strip(),
        }
        return await self._create("Leads", {k: v for k, v in record.items() if v is not None})

    async def push_message(self, message: MessagePush, parent: Ref) -> Ref:
        note = {
            "Note_Title": f"#{message.ticket_id} ({message.channel})"
            + (" ответ оператора" if message.outbound else ""),
            "Note_Content": message.text,
            "Parent_Id": {"module": {"api_name": parent.type}, "id": parent.id},
        }
        return await self._create("Notes", note)

    async def push_call(self, call: CallPush, steps: Steps) -> Ref:
        """One request: nothing to resume (``steps`` unused)."""
        minutes, seconds = divmod(call.duration_seconds, 60)
        record: dict[str, Any] = {
            "Subject": _subject(call),
            "Call_Type": "Outbound" if call.outbound else "Inbound" if call.answered else "Missed",
            "Call_Start_Time": call.started_at,
            "Call_Duration": f"{minutes:02d}:{seconds:02d}",
            "Description": call.recording_url,
        }
        contact = await self._contact(call.phone, "")
        if contact is not None:
            record["Who_Id"] = {"id": str(contact["id"])}
            record["$se_module"] = "Contacts"
        return await self._create("Calls", record)
