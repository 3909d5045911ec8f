"""Supervisor actions as AMI actions: what is sent, what is refused before sending, and
Asterisk's refusal surfaced as ControlError."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from callcenter.channels.telephony.ami import AmiConnectionError, AmiResponse
from callcenter.dashboard.control import AmiControl, ControlError


@dataclass
class FakeAmi:
    answer: AmiResponse = field(default_factory=lambda: AmiResponse({"Response": "Success"}))
    sent: list[dict[str, str]] = field(default_factory=list)
    fail: Exception | None = None

    async def send_action(
        self, action: Mapping[str, str], *, timeout: float = 10.0, as_list: bool | None = None
    ):
        if self.fail is not None:
            raise self.fail
        assert as_list is False  # every control action has exactly one response
        self.sent.append(dict(action))
        return self.answer


async def test_pause_resume_log_in_and_out_send_the_queue_actions() -> None:
    ami = FakeAmi()
    control = AmiControl(ami)
    await control.pause("PJSIP/1001", "  обед ")
    await control.pause("PJSIP/1001", "", queue="sales")
    await control.resume("PJSIP/1001")
    await control.log_in("PJSIP/1002", "sales", name="Борис")
    await control.log_out("PJSIP/1002", "sales")
    assert ami.sent == [
        {"Action": "QueuePause", "Interface": "PJSIP/1001", "Paused": "true", "Reason": "обед"},
        {"Action": "QueuePause", "Interface": "PJSIP/1001", "Paused": "true", "Queue": "sales"},
        {"Action": "QueuePause", "Interface": "PJSIP/1001", "Paused": "false"},
        {
            "Action": "QueueAdd",
            "Queue": "sales",
            "Interface": "PJSIP/1002",
            "MemberName": "Борис",
        },
        {"Action": "QueueRemove", "Queue": "sales", "Interface": "PJSIP/1002"},
    ]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.pause("PJSIP/1001\r\nAction: Originate", "x"),
        lambda c: c.pause("1001", "x"),
        lambda c: c.pause("PJSIP/1001", "обед\nAction: Logoff"),
        lambda c: c.pause("PJSIP/1001", "я" * 81),
        lambda c: c.pause("PJSIP/1001", "x", queue="support,sales"),
        lambda c: c.log_in("PJSIP/1001", ""),
        lambda c: c.log_out("Local/1001@agents\n", "support"),
    ],
)
async def test_bad_input_never_reaches_asterisk(call) -> None:
    ami = FakeAmi()
    with pytest.raises(ValueError):
        await call(AmiControl(ami))
    assert ami.sent == []


async def test_asterisk_refusing_says_why() -> None:
    ami = FakeAmi(AmiResponse({"Response": "Error", "Message": "Interface not found"}))
    with pytest.raises(ControlError, match="Interface not found"):
        await AmiControl(ami).pause("PJSIP/1009", "обед")


async def test_no_connection_is_a_control_error() -> None:
    ami = FakeAmi(fail=AmiConnectionError("not connected to AMI"))
    with pytest.raises(ControlError, match="not reachable: not connected"):
        await AmiControl(ami).resume("PJSIP/1001")
    ami.fail = TimeoutError()
    with pytest.raises(ControlError, match="TimeoutError"):
        await AmiControl(ami).resume("PJSIP/1001")
