"""A real Dovecot IMAP server on 127.0.0.1 for tests, configured in a temporary folder.

Missing Dovecot is an error, never a skip: install it with `apt-get install dovecot-imapd`.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import imaplib
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
USER = "shop@example.test"
PASSWORD = "secret"
NOBODY = 65534  # Dovecot refuses uid 0 for mail storage

CONFIG = """\
protocols = imap
listen = {host}
base_dir = {dir}/run
state_dir = {dir}/run
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {dir}/dovecot.log
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
mail_location = maildir:{dir}/mail/%u
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""


@dataclass(frozen=True)
class Dovecot:
    host: str
    port: int
    user: str
    password: str
    directory: Path

    def connect(self) -> imaplib.IMAP4:
        """A logged-in imaplib client (the caller logs out)."""
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        client.login(self.user, self.password)
        return client

    def append(self, raw: bytes, mailbox: str = "INBOX") -> None:
        """Deliver one message the way a mail server would: IMAP APPEND."""
        client = self.connect()
        try:
            if mailbox.upper() != "INBOX":
                client.create(mailbox)  # "already exists" is a NO answer, not an exception
            status, detail = client.append(mailbox, None, None, raw)
            if status != "OK":
                raise RuntimeError(f"APPEND to {mailbox} failed: {detail!r}")
        finally:
            client.logout()

    @property
    def log(self) -> str:
        path = self.directory / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def dovecot_binary() -> str:
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/sbin")
    if not found:
        raise RuntimeError(
            "Dovecot is not installed: the email tests need a real IMAP server "
            "(apt-get install dovecot-imapd)"
        )
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start_dovecot() -> Dovecot:
    """Start Dovecot in a fresh temporary folder and wait until it greets IMAP clients."""
    binary = dovecot_binary()
    directory = Path(tempfile.mkdtemp(prefix="dovecot-"))  # short: socket paths are limited
    directory.chmod(0o755)  # the mail uid must be able to reach its maildir
    (directory / "mail").mkdir()
    (directory / "run").mkdir()
    uid, gid = (NOBODY, NOBODY) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    if os.geteuid() == 0:
        os.chown(directory / "mail", uid, gid)
    me = pwd.getpwuid(os.geteuid()).pw_name
    server = Dovecot(HOST, free_port(), USER, PASSWORD, directory)
    config = directory / "dovecot.conf"
    config.write_text(
        CONFIG.format(
            host=HOST,
            port=server.port,
            dir=directory,
            password=PASSWORD,
            uid=uid,
            gid=gid,
            login_user="dovenull" if os.geteuid() == 0 else me,
            internal_user=me,
            internal_group=grp.getgrgid(os.getegid()).gr_name,
        )
    )
    # Output goes to a file: the daemon's children inherit it, so a pipe would never close.
    with open(directory / "startup.log", "w+b") as output:
        started = subprocess.run(
            [binary, "-c", str(config)], stdout=output, stderr=output, timeout=30, check=False
        )
        output.seek(0)
        if started.returncode != 0:
            raise RuntimeError(f"dovecot failed to start: {output.read()!r}\n{server.log}")
    _wait_for_greeting(server)
    return server


def _wait_for_greeting(server: Dovecot, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((server.host, server.port), timeout=2) as sock:
                if sock.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"dovecot did not answer on port {server.port}:\n{server.log}")
        time.sleep(0.05)


def stop_dovecot(server: Dovecot, *, remove: bool = True) -> None:
    """Stop the master process we started (by its pid file) and remove its folder."""
    pid_file = server.directory / "run" / "master.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text().split()[0])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                os.kill(pid, 0)
                time.sleep(0.05)
            logger.warning("dovecot %d ignored SIGTERM; killing it", pid)
            os.kill(pid, signal.SIGKILL)
    if remove:
        shutil.rmtree(server.directory, ignore_errors=True)


@contextlib.contextmanager
def dovecot() -> Iterator[Dovecot]:
    server = start_dovecot()
    try:
        yield server
    finally:
        stop_dovecot(server)


@contextlib.asynccontextmanager
async def running_dovecot() -> AsyncIterator[Dovecot]:
    """Dovecot for the duration of the block; start and stop run off the event loop."""
    server = await asyncio.to_thread(start_dovecot)
    try:
        yield server
    finally:
        await asyncio.to_thread(stop_dovecot, server)
