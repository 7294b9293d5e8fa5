"""GET /health: liveness for monitors (no dependencies touched, so it stays up when they are down)."""

from leadflow.web import endpoint, response


@endpoint
def handler(event: dict, context: object) -> dict:
    return response(200, {"status": "ok"})
