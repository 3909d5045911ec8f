"""Administration of the automation rules: the list, one rule's texts with previews, and the
log of firings. Every change goes through ``callcenter.automation.rules`` (validated, audited)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.automation.conditions import InvalidRule
from callcenter.automation.models import Rule, RuleFiring
from callcenter.automation.render import TemplateError, compile_template
from callcenter.automation.rules import get_rule, list_rules, sample_variables, update_rule
from callcenter.db import unit_of_work
from callcenter.domain.errors import NotFound
from callcenter.models import Role
from callcenter.web.access import allow
from callcenter.web.keys import SESSIONS, SETTINGS
from callcenter.web.render import error_page, redirect, render
from callcenter.web.session import require_user

routes = web.RouteTableDef()
FIRINGS_PAGE = 50
_FIELD = "template:"


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip()) if value.strip() else None
    except ValueError:
        return None


async def _firings(
    db: AsyncSession, request: web.Request, rule_id: int | None
) -> tuple[list[RuleFiring], dict[str, Any]]:
    """One page of the log, newest first, filtered by rule and by day (in the shop's zone)."""
    zone = ZoneInfo(request.app[SETTINGS].timezone)
    query = select(RuleFiring).order_by(RuleFiring.id.desc()).limit(FIRINGS_PAGE + 1)
    if rule_id is not None:
        query = query.where(RuleFiring.rule_id == rule_id)
    since, until = _day(request.query.get("from", "")), _day(request.query.get("to", ""))
    if since:
        query = query.where(RuleFiring.at >= datetime.combine(since, time(), zone).astimezone(UTC))
    if until:
        end = datetime.combine(until + timedelta(days=1), time(), zone).astimezone(UTC)
        query = query.where(RuleFiring.at < end)
    before = request.query.get("before", "")
    if before.isdigit():
        query = query.where(RuleFiring.id < int(before))
    rows = list(await db.scalars(query))
    filters = {
        "rule": rule_id or "",
        "from": since.isoformat() if since else "",
        "to": until.isoformat() if until else "",
    }
    return rows[:FIRINGS_PAGE], {**filters, "more": len(rows) > FIRINGS_PAGE}


@routes.get("/admin/rules")
@allow(Role.ADMIN)
async def rules_page(request: web.Request) -> web.Response:
    chosen = request.query.get("rule", "")
    rule_id = int(chosen) if chosen.isdigit() else None
    async with request.app[SESSIONS]() as db:
        rules = await list_rules(db)
        last = dict(
            (
                await db.execute(
                    select(RuleFiring.rule_id, func.max(RuleFiring.at)).group_by(RuleFiring.rule_id)
                )
            ).all()
        )
        firings, filters = await _firings(db, request, rule_id)
    names = {rule.id: rule.name for rule in rules}
    context = {"rules": rules, "last": last, "firings": firings, "names": names, **filters}
    return render(request, "admin_rules.html", context)


def _previews(trigger: str, templates: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    """Each template rendered with sample values: (text, None) or ("", the error)."""
    sample = sample_variables(trigger)
    previews: dict[str, tuple[str, str | None]] = {}
    for key, source in templates.items():
        try:
            previews[key] = (compile_template(key, source).render(sample), None)
        except TemplateError as exc:
            previews[key] = ("", exc.message)
        except Exception as exc:  # an undefined variable or a sandbox refusal, shown as text
            previews[key] = ("", f"template {key}: {exc}")
    return previews


async def _rule_page(
    request: web.Request,
    rule: Rule,
    *,
    status: int = 200,
    error: str | None = None,
    edited: dict[str, str] | None = None,
) -> web.Response:
    templates = {**rule.templates, **(edited or {})}
    context = {
        "rule": rule,
        "keys": sorted(templates),
        "templates": templates,
        "previews": _previews(rule.trigger, templates),
        "error": error,
        "saved": request.query.get("saved") == "1" and error is None,
    }
    return render(request, "admin_rule.html", context, status=status)


def _rule_id(request: web.Request) -> int:
    return int(request.match_info["rule_id"])


@routes.get(r"/admin/rules/{rule_id:\d+}")
@allow(Role.ADMIN)
async def rule_page(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as db:
        try:
            rule = await get_rule(db, _rule_id(request))
        except NotFound:
            return error_page(request, 404, "errors.not_found")
    return await _rule_page(request, rule)


@routes.post(r"/admin/rules/{rule_id:\d+}/enabled")
@allow(Role.ADMIN)
async def set_enabled(request: web.Request) -> web.Response:
    enabled = (await request.post()).get("enabled") == "1"
    try:
        async with unit_of_work(request.app[SESSIONS]) as db:
            await update_rule(db, _rule_id(request), actor=require_user(request), enabled=enabled)
    except NotFound:
        return error_page(request, 404, "errors.not_found")
    return redirect(f"/admin/rules/{_rule_id(request)}")


@routes.post(r"/admin/rules/{rule_id:\d+}/templates")
@allow(Role.ADMIN)
async def save_templates(request: web.Request) -> web.Response:
    form = await request.post()
    edited = {
        key.removeprefix(_FIELD): str(value).replace("\r\n", "\n")
        for key, value in form.items()
        if key.startswith(_FIELD)
    }
    try:
        async with unit_of_work(request.app[SESSIONS]) as db:
            rule = await get_rule(db, _rule_id(request))
            unknown = sorted(set(edited) - set(rule.templates))
            if unknown:
                raise TemplateError(f"rule {rule.name} has no template {unknown[0]}")
            await update_rule(db, rule.id, actor=require_user(request), templates=edited)
    except NotFound:
        return error_page(request, 404, "errors.not_found")
    except (TemplateError, InvalidRule) as exc:
        async with request.app[SESSIONS]() as db:
            rule = await get_rule(db, _rule_id(request))
        return await _rule_page(request, rule, status=400, error=exc.message, edited=edited)
    return redirect(f"/admin/rules/{_rule_id(request)}?saved=1")
