from dataclasses import dataclass

from callcenter.bus import Bus


@dataclass(frozen=True)
class Rang:
    endpoint: str


async def test_every_subscriber_gets_the_event_and_a_failing_one_harms_no_other() -> None:
    bus, seen = Bus(), []

    async def broken(event: Rang) -> None:
        raise RuntimeError("subscriber bug")

    async def record(event: object) -> None:
        seen.append(getattr(event, "endpoint", event))

    bus.subscribe(Rang, broken)
    bus.subscribe(Rang, record)
    bus.subscribe(object, record)  # subscribers of a base type see subclasses too
    bus.publish(Rang("PJSIP/1001"))
    bus.publish("not a Rang")  # no handler for str beyond object's
    await bus.drain()
    assert sorted(seen, key=str) == ["PJSIP/1001", "PJSIP/1001", "not a Rang"]


async def test_an_unsubscribed_handler_gets_nothing_more() -> None:
    bus, seen = Bus(), []

    async def record(event: Rang) -> None:
        seen.append(event.endpoint)

    unsubscribe = bus.subscribe(Rang, record)
    bus.publish(Rang("PJSIP/1001"))
    await bus.drain()
    unsubscribe()
    bus.publish(Rang("PJSIP/1002"))
    await bus.drain()
    assert seen == ["PJSIP/1001"]
