"""The admin status page lists all six external components with their state and last error."""

from __future__ import annotations

from html.parser import HTMLParser

from callcenter.web.keys import HEALTH


class StatusRows(HTMLParser):
    """The rows of ``<table id="status">``: the row's class and the text of each cell."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, list[str]]] = []
        self._in_table = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "table" and values.get("id") == "status":
            self._in_table = True
        elif self._in_table and tag == "tr" and values.get("class"):
            self.rows.append((values["class"] or "", []))
        elif self._in_table and tag == "td" and self.rows:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_table = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1][1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


async def test_the_status_page_renders_every_component(signed_in, app) -> None:
    health = app[HEALTH]
    health.report_ok("ami")
    health.report_failure("ari", "ARI 401: authentication failed")
    health.report_ok("telegram")
    health.report_failure("imap", "LOGIN failed: NO [AUTHENTICATIONFAILED] Authentication failed.")
    health.report_ok("imap")  # recovered: ok, and the last error is still shown
    health.report_failure("smtp", "SMTP server unavailable: ConnectionRefusedError: refused")

    admin = await signed_in("root")
    parser = StatusRows()
    parser.feed(await (await admin.get("/status")).text())
    rows = {cells[0]: (css, cells[1], cells[3]) for css, cells in parser.rows}

    assert list(rows) == [
        "Asterisk AMI",
        "Asterisk ARI",
        "База данных",
        "Telegram",
        "Почта IMAP",
        "Почта SMTP",
    ]
    assert rows["Asterisk AMI"] == ("state-ok", "работает", "—")
    assert rows["Asterisk ARI"][:2] == ("state-failing", "сбой")
    assert "ARI 401: authentication failed" in rows["Asterisk ARI"][2]
    assert rows["База данных"] == ("state-ok", "работает", "—")  # checked as the page loads
    assert rows["Telegram"][:2] == ("state-ok", "работает")
    assert rows["Почта IMAP"][:2] == ("state-ok", "работает")
    assert "AUTHENTICATIONFAILED" in rows["Почта IMAP"][2]
    assert rows["Почта SMTP"][:2] == ("state-failing", "сбой")
    assert "ConnectionRefusedError" in rows["Почта SMTP"][2]
