"""Running the HTTP app under uvicorn: timeouts, a connection cap, logging and worker processes.

uvicorn bounds idle keep-alive connections but not a client that sends its
request headers slowly (or never finishes them): :class:`HeaderTimeoutH11`
closes a connection whose request line and headers have not all arrived
within ``header_timeout`` seconds. The body has its own limit in the app
(:func:`painml.serving.http.create_app`, answered 408), and ``max_connections``
is uvicorn's ``limit_concurrency`` (requests beyond it are answered 503).

With ``workers`` above one uvicorn starts that many processes, each loading
the model itself through :func:`app_from_environment`; the settings travel in
the environment (the token too, as it would when given by variable).
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
from dataclasses import asdict, dataclass
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from painml.serving.http import DEFAULT_BODY_TIMEOUT_S, DEFAULT_MAX_BODY_BYTES, DEFAULT_TIMEOUT_S, create_app

__all__ = ["TOKEN_ENV", "HeaderTimeoutH11", "ServerSettings", "app_from_environment", "log_config", "run"]

TOKEN_ENV = "PAINML_HTTP_TOKEN"
"""Environment variable holding the bearer token (``--token-file`` is read into it for worker processes)."""
_SETTINGS_ENV = "PAINML_HTTP_SETTINGS"


@dataclass(frozen=True)
class ServerSettings:
    """Everything a worker process needs to build the same app (the token comes from :data:`TOKEN_ENV`)."""

    model: str
    tracking_uri: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    allowed_hosts: tuple[str, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    timeout_s: float = DEFAULT_TIMEOUT_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    header_timeout_s: float = 10.0
    max_connections: int = 100
    workers: int = 1
    access_log: bool = False


class HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers do not arrive in time."""

    header_timeout_s = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_deadline()  # the next request on this connection gets the same limit

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "_header_deadline", None) is not None:
            self._header_deadline.cancel()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._header_deadline_passed)

    def _header_deadline_passed(self) -> None:
        self._header_deadline = None
        waiting_for_headers = self.cycle is None or self.cycle.response_complete
        if waiting_for_headers and not self.transport.is_closing():
            self.logger.info("closed a connection whose request headers did not arrive in %g s", self.header_timeout_s)
            self.transport.close()


def _protocol(header_timeout_s: float) -> type[HeaderTimeoutH11]:
    return type("HeaderTimeoutH11", (HeaderTimeoutH11,), {"header_timeout_s": header_timeout_s})


def log_config(access_log: bool) -> dict[str, Any]:
    """uvicorn's logging with its own lines at warning, painml's at info, and access lines when asked.

    An access line is the client address, method, path with query and status:
    patient records travel in request bodies, which are never logged.
    """
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["uvicorn"]["level"] = "WARNING"
    config["loggers"]["uvicorn.access"]["level"] = "INFO" if access_log else "WARNING"
    config["loggers"]["painml"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def _app(settings: ServerSettings, token: str | None):
    # lazy: only the process that serves loads the model
    from painml.serving.predictor import Predictor

    predictor = Predictor.from_uri(settings.model, tracking_uri=settings.tracking_uri)
    return create_app(
        predictor,
        max_body_bytes=settings.max_body_bytes,
        timeout_s=settings.timeout_s,
        body_timeout_s=settings.body_timeout_s,
        allowed_hosts=settings.allowed_hosts,
        token=token,
    )


def app_from_environment():
    """The app of one worker process, from the settings :func:`run` left in the environment."""
    raw = json.loads(os.environ[_SETTINGS_ENV])
    settings = ServerSettings(**{**raw, "allowed_hosts": tuple(raw["allowed_hosts"])})
    return _app(settings, os.environ.get(TOKEN_ENV) or None)


def run(settings: ServerSettings, token: str | None, app: Any = None) -> None:
    """Serve until interrupted: ``app`` (already built) in this process, or ``workers`` processes."""
    import uvicorn

    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": _protocol(settings.header_timeout_s),
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": 5,
        "log_config": log_config(settings.access_log),
        "log_level": None,
        "access_log": settings.access_log,
        "server_header": False,
    }
    if settings.workers <= 1:
        uvicorn.run(app if app is not None else _app(settings, token), **options)
        return
    os.environ[_SETTINGS_ENV] = json.dumps(asdict(settings))
    if token is not None:
        os.environ[TOKEN_ENV] = token
    # Worker processes import the protocol by name; the header timeout goes with the settings.
    options["http"] = "painml.serving.server:WorkerH11"
    uvicorn.run("painml.serving.server:app_from_environment", factory=True, workers=settings.workers, **options)


class WorkerH11(HeaderTimeoutH11):
    """The protocol of a worker process: the header timeout read from the settings in the environment."""

    @property  # type: ignore[override]
    def header_timeout_s(self) -> float:  # type: ignore[override]
        return float(json.loads(os.environ.get(_SETTINGS_ENV, "{}")).get("header_timeout_s", 10.0))
