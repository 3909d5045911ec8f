"""Automation: stored rules applied to domain events, durable timers, surveys.

``callcenter.models`` imports ``automation.models`` at its end, so this package must not
import the engine eagerly; ``run_automation`` is loaded on first use.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "run_automation":
        from callcenter.automation.service import run_automation

        return run_automation
    raise AttributeError(name)


__all__ = ["run_automation"]
