"""``callcenter import-eml``: .eml files and mbox archives, stored the way IMAP mail is."""

from __future__ import annotations

import mailbox
import shutil
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.email.importer import import_paths
from callcenter.channels.email.models import EmailFailure
from tests.email import support
from tests.email.support import FIXTURES, T0, mail


def build_archive(tmp_path: Path) -> tuple[Path, Path]:
    """A folder of .eml files and an mbox archive (one mail in both)."""
    folder = tmp_path / "old-mail"
    folder.mkdir()
    for name in ("koi8r_subject_body.eml", "cp1251_undeclared.eml", "no_message_id.eml"):
        shutil.copy(FIXTURES / name, folder / name)
    (folder / "broken.eml").write_bytes(b"   \r\n\r\n")
    archive = tmp_path / "Archive"  # no extension: recognised by its "From " line
    box = mailbox.mbox(archive)
    box.add((FIXTURES / "koi8r_subject_body.eml").read_bytes())
    box.add(
        mail(
            "Вера <vera@example.ru>",
            "Заказ 8080",
            "Где заказ 8080?\nFrom now on...",
            message_id="v1@x",
        )
    )
    box.add(
        mail(
            "Вера <vera@example.ru>",
            "Re: Заказ 8080",
            "Спасибо, получила.",
            message_id="v2@x",
            in_reply_to="v1@x",
            references=("v1@x",),
            date=T0.replace(hour=15),
        )
    )
    box.add((FIXTURES / "auto_replied.eml").read_bytes())
    box.flush()
    box.close()
    return folder, archive


async def test_eml_files_and_an_mbox_archive_are_imported_once(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    settings = support.settings(tmp_path / "data")
    folder, archive = build_archive(tmp_path)

    summary = await import_paths(settings, sessions, [folder, archive, tmp_path / "missing.mbox"])

    assert summary.counts["stored"] == 6
    assert summary.automatic == 1
    assert summary.counts["duplicate"] == 1  # the KOI8-R mail is in both
    [failure] = summary.failures
    assert failure.source.endswith("broken.eml") and "empty" in failure.error
    assert summary.unreadable == [f"{tmp_path / 'missing.mbox'} (no such file)"]
    assert not summary.ok
    assert "stored: 6 (automatic: 1)" in summary.format()

    stored = {i.external_id: i for i in await support.emails(sessions)}
    assert len(stored) == 6
    assert stored["v2@x"].ticket_id == stored["v1@x"].ticket_id is not None
    assert stored["v1@x"].text.endswith(
        "From now on..."
    )  # the mbox writer's ">From" quoting undone
    assert stored["autoreply-1@corp.example"].ticket_id is None
    assert "Хочу вернуть утюг" in stored["20240514091500.GA1234@example.ru"].text
    async with sessions() as session:
        [row] = await session.scalars(select(EmailFailure))
    assert Path(row.path).read_bytes() == b"   \r\n\r\n"
    assert Path(row.path).parent == tmp_path / "data" / "email-failed"

    again = await import_paths(settings, sessions, [folder, archive])
    assert again.counts["stored"] == 0
    assert again.counts["duplicate"] == 7
    assert len(await support.emails(sessions)) == 6
