from datetime import UTC, datetime

import pytest

from callcenter.automation.calls import bridge_calls
from callcenter.automation.events import CallAbandoned, CallEnded
from callcenter.bus import Bus
from callcenter.channels.telephony.events import CallRecorded
from callcenter.models import CallOutcome

AT = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def recorded(outcome: CallOutcome) -> CallRecorded:
    return CallRecorded(
        interaction_id=7, customer_id=3, agent_id=None if outcome != CallOutcome.ANSWERED else 2,
        linkedid="1795.1", queue="support", caller_number="+79161234567", outcome=outcome,
        wait_seconds=42, at=AT,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (CallOutcome.ANSWERED, CallEnded(7, None, 3, 2, True, AT)),
        (CallOutcome.MISSED, CallEnded(7, None, 3, None, False, AT)),
        (CallOutcome.ABANDONED, CallAbandoned(7, None, 3, "+79161234567", "support", 42, AT)),
        (CallOutcome.TIMEOUT, CallAbandoned(7, None, 3, "+79161234567", "support", 42, AT)),
    ],
)
async def test_a_stored_call_becomes_the_trigger_the_rules_expect(
    outcome: CallOutcome, expected: object
) -> None:
    bus, seen = Bus(), []

    async def record(event: object) -> None:
        seen.append(event)

    bus.subscribe(CallEnded, record)
    bus.subscribe(CallAbandoned, record)
    bridge_calls(bus)
    bus.publish(recorded(outcome))
    await bus.drain()
    assert seen == [expected]
