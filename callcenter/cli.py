"""The ``callcenter`` command line."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import secrets
import sys
from collections.abc import Sequence
from datetime import date

from callcenter.config import ConfigError, Settings, load_settings
from callcenter.domain.errors import DomainError

log = logging.getLogger("callcenter")


def _cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.migrate import upgrade

    upgrade(settings.resolved_database_url, args.revision)
    print(f"database at revision {args.revision}")
    return 0


def _cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.serve import run

    run(settings, args.host or settings.web_host, args.port or settings.web_port)
    return 0


def _cmd_agi(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.channels.telephony.fastagi import agi_main

    return agi_main(settings, args)


def _cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.workers import run_worker

    run_worker(settings, args.kind)
    return 0


async def _import_eml(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.channels.email.importer import import_paths
    from callcenter.db import create_engine, session_factory

    engine = create_engine(settings.resolved_database_url)
    try:
        summary = await import_paths(settings, session_factory(engine), args.paths)
    finally:
        await engine.dispose()
    print(summary.format())
    return 0 if summary.ok else 1


def _cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter import demo

    if args.action == "run":
        asyncio.run(demo.run_demo(settings))
        return 0
    code = asyncio.run(demo.place_call(settings, args.number, args.name))
    print("call placed" if code == 0 else f"the call failed (sipp exit {code})")
    return 0 if code == 0 else 1


def _read_password(args: argparse.Namespace) -> tuple[str, bool]:
    """The new user's password and whether it was generated (and so must be shown once)."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    if sys.stdin.isatty():
        return getpass.getpass("password: "), False
    return secrets.token_urlsafe(12), True


async def _user_add(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.db import create_engine, session_factory, unit_of_work
    from callcenter.domain.users import add_user
    from callcenter.models import Role

    password, generated = _read_password(args)
    engine = create_engine(settings.resolved_database_url)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            user = await add_user(
                session,
                args.name,
                Role(args.role),
                password,
                endpoint=args.endpoint,
                display_name=args.display_name or "",
                language=args.language,
            )
    finally:
        await engine.dispose()
    print(
        f"created {user.role.value} {user.username}"
        + (f" on {user.sip_endpoint}" if user.sip_endpoint else "")
    )
    if generated:
        print(f"password: {password}")
    return 0


async def _seed(settings: Settings, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from callcenter.db import create_engine
    from callcenter.seed import seed

    engine = create_engine(settings.resolved_database_url)
    try:
        with tqdm(total=args.customers, unit="customer", disable=args.quiet) as bar:
            report = await seed(
                engine,
                args.customers,
                batch_size=args.batch,
                seed_value=args.seed,
                progress=bar.update,
            )
    finally:
        await engine.dispose()
    rate = report.customers / report.seconds if report.seconds else 0
    print(
        f"seeded {report.customers} customers and {report.interactions} interactions "
        f"into {engine.dialect.name} in {report.seconds:.1f} s ({rate:,.0f} customers/s)"
    )
    return 0


async def _analytics_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.analytics.refresh import Refresher
    from callcenter.db import create_engine, session_factory

    engine = create_engine(settings.resolved_database_url)
    try:
        refresher = Refresher(session_factory(engine), settings.timezone)
        if args.since is None:
            await refresher.rebuild()
        else:
            await refresher.rebuild_since(args.since)
    finally:
        await engine.dispose()
    print("analytics rebuilt" + (f" from {args.since}" if args.since else ""))
    return 0


def _cmd_classify(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.classify.cli import run_stored

    return run_stored(settings.resolved_database_url, sys.stdin, sys.stdout)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callcenter", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    migrate = commands.add_parser("migrate", help="upgrade the database schema")
    migrate.add_argument("--revision", default="head")
    migrate.set_defaults(handler=_cmd_migrate)

    serve = commands.add_parser(
        "serve", help="run the web app (and, as they are built, telephony and workers)"
    )
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(handler=_cmd_serve)

    agi = commands.add_parser("agi", help="run the FastAGI server alone (the dialplan's lookup)")
    agi.set_defaults(handler=_cmd_agi)

    worker = commands.add_parser("worker", help="run one channel worker alone")
    worker.add_argument("kind", choices=["telegram", "email"])
    worker.set_defaults(handler=_cmd_worker)

    import_eml = commands.add_parser("import-eml", help="import .eml files and mbox archives")
    import_eml.add_argument("paths", nargs="+", metavar="PATH")
    import_eml.set_defaults(handler=_import_eml)

    demo = commands.add_parser("demo", help="the whole product with a demo PBX and calls")
    demo_actions = demo.add_subparsers(dest="action", required=True)
    demo_actions.add_parser("run", help="Asterisk, an answering agent phone and serve")
    call = demo_actions.add_parser("call", help="place a customer call into the running demo")
    call.add_argument("--from", dest="number", default="+79161234567")
    call.add_argument("--name", default="Иван Петров", help="the caller ID name")
    demo.set_defaults(handler=_cmd_demo)

    user = commands.add_parser("user", help="manage staff accounts").add_subparsers(
        dest="action", required=True
    )
    add = user.add_parser("add", help="create an agent, supervisor or admin")
    add.add_argument("name")
    add.add_argument("--role", choices=["agent", "supervisor", "admin"], required=True)
    add.add_argument("--endpoint", help="the SIP endpoint the agent answers on, e.g. PJSIP/1001")
    add.add_argument("--display-name")
    add.add_argument("--language", choices=["ru", "en"], default="ru")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(handler=_user_add)

    seed = commands.add_parser("seed", help="load realistic Russian demo data")
    seed.add_argument("--customers", type=int, required=True)
    seed.add_argument("--batch", type=int, default=5000)
    seed.add_argument("--seed", type=int, default=1)
    seed.add_argument("--quiet", action="store_true")
    seed.set_defaults(handler=_seed)

    analytics = commands.add_parser("analytics", help="the analytics rollups").add_subparsers(
        dest="action", required=True
    )
    rebuild = analytics.add_parser("rebuild", help="recompute the rollups from the core tables")
    rebuild.add_argument(
        "--since", type=date.fromisoformat, metavar="YYYY-MM-DD", help="only this day and later"
    )
    rebuild.set_defaults(handler=_analytics_rebuild)

    classify = commands.add_parser(
        "classify", help="tag messages read one per line from stdin with intents and order numbers"
    )
    classify.set_defaults(handler=_cmd_classify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("alembic", "pymorphy3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        settings = load_settings()
        result = args.handler(settings, args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result)
    except (ConfigError, DomainError) as exc:
        print(f"callcenter: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
