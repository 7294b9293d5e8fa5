"""The Meta Graph API for tests: the local platform API of `leadflow up` (leadflow_local.local_platforms).

`FakeGraph(access_token)` is started at once; `add_lead(leadgen_id, lead, script=[statuses])` scripts the
per-operation answers of one lead (the last repeating), `requests` holds every batch call, unknown ids
answer Graph's 400 (100).
"""

from __future__ import annotations

from leadflow_local.local_platforms import LocalPlatforms


def FakeGraph(access_token: str) -> LocalPlatforms:  # noqa: N802 - kept as the tests' constructor name
    return LocalPlatforms(tokens={"meta": access_token}).start()
