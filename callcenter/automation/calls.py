"""Telephony's stored call records, as the triggers the rules know: call ended, call abandoned."""

from __future__ import annotations

from collections.abc import Callable

from callcenter.automation.events import CallAbandoned, CallEnded
from callcenter.bus import Bus
from callcenter.channels.telephony.events import CallRecorded
from callcenter.models import CallOutcome

# A caller who gave up waiting, or whom no agent answered, is owed a call back.
_LOST = (CallOutcome.ABANDONED, CallOutcome.TIMEOUT)


def triggers(recorded: CallRecorded) -> list[object]:
    """The rule triggers one stored call gives (a call is never attached to a ticket yet)."""
    if recorded.outcome in _LOST:
        return [
            CallAbandoned(
                interaction_id=recorded.interaction_id,
                ticket_id=None,
                customer_id=recorded.customer_id,
                caller_number=recorded.caller_number,
                queue=recorded.queue,
                wait_seconds=recorded.wait_seconds,
                at=recorded.at,
            )
        ]
    return [
        CallEnded(
            interaction_id=recorded.interaction_id,
            ticket_id=None,
            customer_id=recorded.customer_id,
            agent_id=recorded.agent_id,
            answered=recorded.outcome is CallOutcome.ANSWERED,
            at=recorded.at,
        )
    ]


def bridge_calls(bus: Bus) -> Callable[[], None]:
    """Republish every CallRecorded as its rule triggers; returns the unsubscribe call."""

    async def republish(recorded: CallRecorded) -> None:
        for event in triggers(recorded):
            bus.publish(event)

    return bus.subscribe(CallRecorded, republish)
