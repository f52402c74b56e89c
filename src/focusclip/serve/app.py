"""The server: one FastAPI app with the JSON API under ``/api`` and the Gradio page at ``/``.

```python
from focusclip.serve.app import ServeConfig, create_app, serve
serve(ServeConfig(models_root="runs"))          # what `focusclip serve` runs; http://127.0.0.1:7860
app = create_app(ServeConfig(models_root="runs"))   # or run it under any ASGI server
```

Offline by construction: Gradio's analytics and version check are off, the theme uses system fonts,
no share link is made, there is no run history (which could connect to a hub) and no Swagger page (it
loads scripts from a CDN). Requests are bounded by :class:`BodySizeLimit` before anything is parsed.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from focusclip.serve.uploads import UploadLimits, format_mb

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
#: On stop, open connections (a page's event stream stays open) get this long before they are closed.
GRACEFUL_SHUTDOWN_S = 3


@dataclass
class ServeConfig:
    """Where the models are, where to listen, and the upload limits."""

    models_root: str | os.PathLike | None = "runs"
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    default_model: str | None = None   #: a model id (see GET /api/models); default: a trained FocusCLIP
    registered: bool = True            #: also offer the registered (untrained) configs
    clip_models: tuple[str, ...] = ()  #: CLIP checkpoints to offer by name (openclip:ARCH/TAG, hfclip:ID)
    hub_models: tuple[str, ...] = ()   #: saved models on the Hub (hf-hub:ORG/NAME); a default_model of that form too
    device: str = "auto"
    threads: int | None = None         #: torch CPU threads for inference (None: torch's default); see docs/serve.md
    limits: UploadLimits = field(default_factory=UploadLimits)
    #: pose detector for photos without an ROI file: "mediapipe", "rtmo", "auto" (mediapipe when installed)
    #: or None; options go to :func:`focusclip.detect.create_detector` (rtmo needs ``weights``)
    detector: str | None = None
    detector_options: dict[str, Any] = field(default_factory=dict)


class BodySizeLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 (by its Content-Length, or while it
    streams in), so neither the API nor Gradio's upload route ever buffers more than that."""

    def __init__(self, app: Any, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self._reject(send)
        seen = 0
        started = rejected = False

        async def limited_receive() -> dict:
            nonlocal seen, started, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    rejected = True
                    if not started:
                        started = True
                        await self._reject(send)
                    return {"type": "http.disconnect"}  # the app stops reading; its answer is dropped
            return message

        async def guarded_send(message: dict) -> None:
            nonlocal started
            if rejected:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not rejected:  # a request cut off by the limit may end in a disconnect error: expected
                raise

    async def _reject(self, send: Any) -> None:
        body = json.dumps({"error": f"request body over the limit of {format_mb(self.max_bytes)}"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_service(config: ServeConfig) -> Any:
    """The :class:`~focusclip.serve.service.Service` for ``config`` (catalog of the models root + registry)."""
    from focusclip.model.names import is_hub_name
    from focusclip.serve.models import ClipModels, HubModels, ModelCatalog, RegisteredModels, SavedModels
    from focusclip.serve.service import Service

    sources: list[Any] = []
    if config.models_root is not None:
        root = Path(config.models_root)
        if not root.is_dir():
            logger.warning("models root %s does not exist (yet): only registered configs are offered; "
                           "`make demo` trains one", root)
        sources.append(SavedModels(root))
    if config.registered:
        sources.append(RegisteredModels())
    if config.clip_models:
        sources.append(ClipModels(tuple(config.clip_models)))
    hub = [*config.hub_models, *([config.default_model] if is_hub_name(config.default_model) else [])]
    if hub:
        sources.append(HubModels(tuple(dict.fromkeys(hub))))
    catalog = ModelCatalog(sources)
    return Service(catalog, limits=config.limits, device=config.device, default_model=config.default_model,
                   people_finder=build_people_finder(config.detector, config.detector_options))


def build_people_finder(name: str | None, options: dict[str, Any] | None = None) -> Any:
    """The server's :class:`~focusclip.serve.roi.PeopleFinder`, or None.

    ``auto`` means mediapipe when it is installed (created at its first use), else no detector; a named
    detector is created now, so a missing package or bad weights stop the start with a one-line error.
    """
    import functools
    import importlib.util

    from focusclip.detect import create_detector
    from focusclip.serve.roi import PeopleFinder

    if name in (None, "none"):
        return None
    options = dict(options or {})
    if name == "auto":
        if importlib.util.find_spec("mediapipe") is None:
            logger.info("no pose detector: mediapipe is not installed (pip install 'focusclip[detect]')")
            return None
        return PeopleFinder("mediapipe", functools.partial(create_detector, "mediapipe", **options))
    factory = functools.partial(create_detector, name, **options)
    return PeopleFinder(name, factory, detector=factory())


def create_app(config: ServeConfig | None = None, service: Any = None) -> Any:
    """The ASGI app: ``/api/...`` (JSON) and the Gradio page at ``/``."""
    import gradio as gr
    from fastapi import FastAPI

    from focusclip.serve.api import build_router
    from focusclip.serve.page import DownloadFolder, build_page, page_css, theme

    config = config or ServeConfig()
    service = service or build_service(config)
    app = FastAPI(title="focusclip serve", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.include_router(build_router(service))
    downloads = DownloadFolder()
    page = build_page(service, downloads)
    blocked = [str(Path(config.models_root).resolve())] if config.models_root is not None else []
    app = gr.mount_gradio_app(
        app, page, path="/", server_name=config.host, server_port=config.port, footer_links=[],
        run_history=False, max_file_size=config.limits.max_file_bytes, ssr_mode=False, mcp_server=False,
        pwa=False, theme=theme(), css=page_css(), blocked_paths=blocked, show_error=False,
    )
    app.state.service = service
    app.state.downloads = downloads
    app.add_middleware(BodySizeLimit, max_bytes=config.limits.max_request_bytes)
    return app


def serve(config: ServeConfig) -> None:
    """Run the server until interrupted (uvicorn, one process)."""
    import uvicorn

    if config.threads is not None:  # serve() owns its process, so it may set the process-wide pool
        import torch

        torch.set_num_threads(config.threads)
    if not is_loopback(config.host):
        logger.warning("listening on %s: anyone who can reach this machine can use the page and the API "
                       "(there is no authentication)", config.host)
    app = create_app(config)
    service = app.state.service
    kinds = [e.kind for e in service.models()]
    logger.info("focusclip serve on http://%s:%d  (%d saved models under %s, %d registered configs; default %s)",
                config.host, config.port, kinds.count("saved"), config.models_root, kinds.count("registered"),
                service.default_model_id())
    if service.default_model_id() is not None:
        try:  # so that the first request does not wait for it
            service.model(service.default_model_id())
        except Exception as e:
            logger.warning("could not load the default model %s: %s", service.default_model_id(), e)
    try:
        uvicorn.run(app, host=config.host, port=config.port, log_level="warning",
                    timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    finally:
        app.state.downloads.cleanup()
        if service.people_finder is not None:
            service.people_finder.close()


class BackgroundServer:
    """Serve an app from a daemon thread (tests, notebooks, benchmarks); ``port=0`` picks a free port.

    ```python
    with BackgroundServer(create_app(ServeConfig(models_root="runs"))) as server:
        httpx.get(server.url + "/api/models")
    ```
    """

    def __init__(self, app: Any, host: str = DEFAULT_HOST, port: int = 0, start_timeout: float = 60.0):
        import uvicorn

        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                     timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S))
        self.host = host
        self.port = port
        self.start_timeout = start_timeout
        self._thread: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        import threading
        import time

        self._thread = threading.Thread(target=self._server.run, name="focusclip-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start on {self.host}:{self.port}")
            time.sleep(0.05)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
