"""Run a real Asterisk: the provisioned chroot (scripts/provision-asterisk) or the system's.

`AsteriskProcess` renders the configuration into a run folder of its own, starts Asterisk
in the foreground, and is ready once AMI accepts a login and reports FullyBooted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from types import TracebackType

from callcenter.channels.telephony.amiframes import FrameReader
from callcenter.channels.telephony.pbxconfig import CONFIG_DIR, DIALPLAN_DIR, PbxSettings, render

log = logging.getLogger(__name__)

ROOT_ENV = "CALLCENTER_ASTERISK_ROOT"
DEFAULT_ROOT = Path.home() / ".cache" / "callcenter" / "asterisk-root"
ASTERISK = "/usr/sbin/asterisk"
MIN_MAJOR = 20
PROVISION_HINT = "run scripts/provision-asterisk"


class AsteriskNotProvisioned(RuntimeError):
    """No usable Asterisk on this machine."""


class AsteriskStartError(RuntimeError):
    """Asterisk exited or did not become ready in time."""


def _major(version_output: str) -> int:
    match = re.search(r"Asterisk (\d+)\.", version_output)
    return int(match.group(1)) if match else 0


def _version(command: list[str]) -> int:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return _major(done.stdout)


def find_root() -> Path:
    """The Asterisk root: $CALLCENTER_ASTERISK_ROOT, the cache, else "/" for a system Asterisk."""
    configured = os.environ.get(ROOT_ENV)
    candidates = [Path(configured)] if configured else [DEFAULT_ROOT]
    for root in candidates:
        if (root / ASTERISK.lstrip("/")).exists():
            if _version(["chroot", str(root), ASTERISK, "-V"]) >= MIN_MAJOR:
                return root
            raise AsteriskNotProvisioned(
                f"{root} holds no working Asterisk {MIN_MAJOR}+ (is this user root?); "
                f"{PROVISION_HINT}"
            )
    system = shutil.which("asterisk")
    if not configured and system and _version([system, "-V"]) >= MIN_MAJOR:
        return Path("/")
    where = candidates[0]
    raise AsteriskNotProvisioned(
        f"Asterisk {MIN_MAJOR}+ is not provisioned (looked in {where} and PATH); {PROVISION_HINT}"
    )


def _die_with_parent() -> None:
    """In the child: SIGTERM when the parent dies, so no Asterisk outlives a test run."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class AsteriskProcess:
    """One Asterisk instance with its own configuration, ports and secrets."""

    def __init__(
        self,
        settings: PbxSettings | None = None,
        root: Path | None = None,
        *,
        config_dir: Path = CONFIG_DIR,
        dialplan_dir: Path = DIALPLAN_DIR,
        start_timeout: float = 60.0,
        keep_run_dir: bool = False,
    ) -> None:
        self.settings = settings or PbxSettings.ephemeral()
        self.root = root or find_root()
        self.config_dir = config_dir
        self.dialplan_dir = dialplan_dir
        self.start_timeout = start_timeout
        self.keep_run_dir = keep_run_dir
        name = f"{os.getpid()}-{os.urandom(4).hex()}"
        if self.root == Path("/"):
            self.run_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"callcenter-asterisk-{name}"
            self._inner_run_dir = str(self.run_dir)
        else:
            self._inner_run_dir = f"/opt/cc/{name}"
            self.run_dir = self.root / self._inner_run_dir.lstrip("/")
        self._process: asyncio.subprocess.Process | None = None

    # Addresses and credentials, for clients.
    host = "127.0.0.1"

    @property
    def ami_port(self) -> int:
        return self.settings.ami_port

    @property
    def sip_port(self) -> int:
        return self.settings.sip_port

    @property
    def http_port(self) -> int:
        return self.settings.http_port

    @property
    def etc_dir(self) -> Path:
        return self.run_dir / "etc"

    @property
    def log_path(self) -> Path:
        return self.run_dir / "log" / "messages.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _command(self, *args: str) -> list[str]:
        conf = f"{self._inner_run_dir}/etc/asterisk.conf"
        base = [ASTERISK] if self.root == Path("/") else ["chroot", str(self.root), ASTERISK]
        return [*base, "-C", conf, *args]

    async def start(self) -> None:
        """Render the configuration, start Asterisk and wait until AMI is ready."""
        if self._process and self._process.returncode is None:
            raise AsteriskStartError("already running")
        for sub in ("etc", "lib/keys", "spool", "run", "log", "cache"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        render(self.settings, self.etc_dir, self._inner_run_dir, self.config_dir, self.dialplan_dir)
        output = (self.run_dir / "log" / "console.log").open("ab")
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self._command("-f", "-n"),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                preexec_fn=_die_with_parent,
            )
        finally:
            output.close()
        log.info("asterisk started (pid %s) in %s", self._process.pid, self.run_dir)
        try:
            await asyncio.wait_for(self._wait_ready(), self.start_timeout)
        except (TimeoutError, AsteriskStartError) as exc:
            tail = self.log_tail()
            await self._terminate()
            raise AsteriskStartError(f"Asterisk did not become ready: {exc}\n{tail}") from exc

    async def _wait_ready(self) -> None:
        while True:
            if self._process is None or self._process.returncode is not None:
                code = self._process.returncode if self._process else None
                raise AsteriskStartError(f"Asterisk exited with code {code}")
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, TimeoutError):
                await asyncio.wait_for(self._ami_login_probe(), 5)
                return
            await asyncio.sleep(0.2)

    async def _ami_login_probe(self) -> None:
        """Log in to AMI and wait for FullyBooted, which Asterisk sends once booted."""
        reader, writer = await asyncio.open_connection(self.host, self.ami_port)
        try:
            writer.write(
                f"Action: Login\r\nUsername: {self.settings.ami_username}\r\n"
                f"Secret: {self.settings.ami_secret}\r\nEvents: system\r\n\r\n".encode()
            )
            frames = FrameReader()
            logged_in = False
            while True:
                chunk = await reader.read(4096)
                if not chunk:
                    raise ConnectionError("AMI closed the connection")
                for headers in frames.feed(chunk):
                    if headers.get("Response") == "Error":
                        raise AsteriskStartError(f"AMI login refused: {headers.get('Message')}")
                    logged_in = logged_in or headers.get("Response") == "Success"
                    if logged_in and headers.get("Event") == "FullyBooted":
                        writer.write(b"Action: Logoff\r\n\r\n")
                        return
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def cli(self, command: str, timeout: float = 10.0) -> str:
        """Run one Asterisk CLI command (`asterisk -rx`) and return its output."""
        proc = await asyncio.create_subprocess_exec(
            *self._command("-rx", command),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        return out.decode("utf-8", "replace")

    async def stop(self, timeout: float = 10.0) -> None:
        """`core stop now`, then kill if Asterisk is still running after `timeout` seconds."""
        await self._terminate(timeout)
        if not self.keep_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    async def restart(self) -> None:
        """Stop and start again with the same ports, secrets and run folder."""
        await self._terminate()
        await self.start()

    async def _terminate(self, timeout: float = 10.0) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(OSError, TimeoutError):
            await self.cli("core stop now", timeout=timeout)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            log.warning("asterisk (pid %s) ignored core stop now; killing it", process.pid)
            process.kill()
            await process.wait()

    def log_tail(self, lines: int = 30) -> str:
        """The end of Asterisk's own logs, for error messages."""
        parts = []
        for path in (self.run_dir / "log" / "console.log", self.log_path):
            if path.exists():
                text = path.read_text(encoding="utf-8", errors="replace").splitlines()
                parts.append(f"--- {path.name}\n" + "\n".join(text[-lines:]))
        return "\n".join(parts)

    async def __aenter__(self) -> AsteriskProcess:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
