"""Test-only journey functions: record what they are invoked with (see tests/support/journey_probe.py)."""

from tests.support.journey_probe import PROBE


def compute_next_touch(event: dict, context: object) -> dict:
    return PROBE.compute_next_touch(event, context)


def send_touch(event: dict, context: object) -> dict:
    return PROBE.send_touch(event, context)
