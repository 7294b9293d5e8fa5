"""A platform API (Graph, LinkedIn, TikTok) on 127.0.0.1 for fetch tests: the local platform API of
`leadflow up` (leadflow_local.local_platforms), checking the dev tokens.

`answer(path, (status, body), ...)` scripts a path (played in order, the last one repeating); `calls` records
every request (method, path, query, lowercased headers) so a test can check what was asked.
"""

from __future__ import annotations

from http.server import ThreadingHTTPServer

from leadflow_local.local_platforms import Call, LocalPlatforms

__all__ = ["Call", "LocalPlatforms", "start_fake_api"]


def start_fake_api() -> tuple[LocalPlatforms, ThreadingHTTPServer]:
    platforms = LocalPlatforms().start()
    assert platforms.server is not None
    return platforms, platforms.server
