"""Duration buckets about 6 % wide: the rollups count tickets per bucket, and an exact median is
read from the one bucket that holds it (see ``figures.median``)."""

from __future__ import annotations

from bisect import bisect_right


def _bounds() -> tuple[int, ...]:
    bounds, width = [0], 1.0
    while bounds[-1] < 2**31:
        width *= 1.06
        bounds.append(max(bounds[-1] + 1, int(width)))
    return tuple(bounds)


BOUNDS = _bounds()


def bucket(seconds: int) -> int:
    return bisect_right(BOUNDS, seconds) - 1


def span(number: int) -> tuple[int, int]:
    """The seconds a bucket holds: ``lo <= s < hi``."""
    return BOUNDS[number], BOUNDS[number + 1]
