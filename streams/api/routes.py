"""The worker's web server: Prometheus exposition, health checks, the HTTP API and the live page.

Plain aiohttp handlers on the aiohttp application Faust's web server runs (``app.web.web_app``),
with one middleware that turns every failure into JSON ``{"error": ...}`` with its status, refuses
request bodies (every route only reads) and asks for the bearer token on every route but the
public ones. Lines over 8190 bytes (a URL, a header) are refused by aiohttp's parser, with a 400.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from importlib.resources import files

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from streams.api.auth import authorized
from streams.api.local import NotReady
from streams.api.models import ErrorBody
from streams.api.openapi import document
from streams.api.params import BadParameter
from streams.api.service import INTERNAL, Api, NotFound

log = logging.getLogger(__name__)

PUBLIC = frozenset({"/", "/metrics", "/health/live", "/health/ready"})  # no token asked
RETRY_AFTER_SECONDS = "2"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(ErrorBody(error=message).model_dump(), status=status, headers=headers)


def model(body: BaseModel) -> web.Response:
    return web.Response(body=body.model_dump_json(), content_type="application/json")


def guard(token: str | None) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if request.body_exists:  # the API only reads: a body is never wanted, whatever its size
                length = "chunked" if request.content_length is None else f"{request.content_length} bytes"
                return error(413, f"this API takes no request body (got {length})", {"Connection": "close"})
            if request.path not in PUBLIC and not authorized(request.headers.get("Authorization"), token):
                return error(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
            return await handler(request)
        except BadParameter as exc:
            return error(400, str(exc))
        except NotFound as exc:
            return error(404, str(exc))
        except NotReady as exc:
            return error(503, str(exc), {"Retry-After": RETRY_AFTER_SECONDS})
        except web.HTTPException as exc:  # the router's own 404 and 405
            if exc.status < 400:
                raise
            return error(exc.status, f"{exc.reason}: {request.method} {request.path}")
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return error(500, "internal error; the worker's log has the details")

    return middleware


def register_routes(
    app: web.Application,
    api: Api,
    exposition: Callable[[], bytes],
    not_ready_because: Callable[[], str | None],
    *,
    token: str | None,
    version: str,
) -> None:
    page = files("streams.api").joinpath("page.html").read_text(encoding="utf-8")
    openapi = document(version)

    async def metrics(request: web.Request) -> web.Response:
        response = web.Response(body=exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def live(request: web.Request) -> web.Response:
        return web.json_response({"status": "live"})

    async def readiness(request: web.Request) -> web.Response:
        reason = not_ready_because()
        if reason is None:
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "not ready", "error": reason}, status=503)

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    async def spec(request: web.Request) -> web.Response:
        return web.json_response(openapi)

    async def deal(request: web.Request) -> web.Response:
        return model(await api.deal(request.match_info["deal_id"]))

    async def rep_metrics(request: web.Request) -> web.Response:
        return model(await api.metrics("rep", request.match_info["rep_id"], request.query))

    async def team_metrics(request: web.Request) -> web.Response:
        return model(await api.metrics("team", request.match_info["team"], request.query))

    async def awaiting(request: web.Request) -> web.Response:
        return model(await api.awaiting(request.match_info["team"], request.query))

    async def teams(request: web.Request) -> web.Response:
        return model(api.teams())

    async def local_deal(request: web.Request) -> web.Response:
        return web.json_response(api.local_deal(request.match_info["deal_id"]))

    async def local_report(request: web.Request) -> web.Response:
        info = request.match_info
        return web.json_response(api.local_report(info["subject"], info["name"], request.query))

    async def local_awaiting(request: web.Request) -> web.Response:
        return web.json_response(api.local_awaiting(request.match_info["team"], request.query))

    app.middlewares.append(guard(token))
    for path, handler in (
        ("/", index),
        ("/metrics", metrics),
        ("/health/live", live),
        ("/health/ready", readiness),
        ("/openapi.json", spec),
        ("/deals/{deal_id}", deal),
        ("/reps/{rep_id}/metrics", rep_metrics),
        ("/teams", teams),
        ("/teams/{team}/metrics", team_metrics),
        ("/teams/{team}/awaiting", awaiting),
        (f"{INTERNAL}/deals/{{deal_id}}", local_deal),
        (f"{INTERNAL}/reports/{{subject}}/{{name}}", local_report),
        (f"{INTERNAL}/awaiting/{{team}}", local_awaiting),
    ):
        app.router.add_get(path, handler, allow_head=False)
