"""The worker's HTTP endpoints: Prometheus exposition and health checks."""

from __future__ import annotations

from collections.abc import Callable

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


def register_routes(app: faust.App, registry: CollectorRegistry, ready: Callable[[], bool]) -> None:
    @app.page("/metrics")
    async def metrics(self: View, request: Request) -> Response:
        return self.bytes(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/health/live")
    async def live(self: View, request: Request) -> Response:
        return self.json({"status": "live"})

    @app.page("/health/ready")
    async def readiness(self: View, request: Request) -> Response:
        if ready():
            return self.json({"status": "ready"})
        return self.json({"status": "recovering", "error": "tables are recovering"}, status=503)
