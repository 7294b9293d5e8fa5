"""Test-only stream function: records every event it is invoked with (see tests/support/stream_probe.py)."""

from tests.support.stream_probe import PROBE


def handler(event: dict, context: object) -> dict:
    return PROBE.handle(event, context)
