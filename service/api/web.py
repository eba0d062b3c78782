"""GET /: the web page (plain HTML, CSS and JavaScript shipped in service/web/, no build step).

The page and its static files are served cross-origin isolated (COOP same-origin, COEP
require-corp): only then does the browser give the page SharedArrayBuffer, which the Live mode's
multi-threaded WebAssembly (onnxruntime-web) needs. Everything the page loads is same-origin, so
the isolation costs it nothing.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, status
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# Module scripts need a JavaScript type and WebAssembly streams only as application/wasm; some
# systems' MIME tables know neither suffix.
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")

# The page is not part of the API: it stays out of openapi.yaml.
router = APIRouter(tags=["web"], include_in_schema=False)


@router.get("/", response_class=FileResponse, status_code=status.HTTP_200_OK)
async def index() -> FileResponse:
    """The web page: upload, classify, stylise, watch and download; paint the camera live."""
    return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers=ISOLATION_HEADERS)


class IsolatedStaticFiles(StaticFiles):
    """StaticFiles whose answers carry the page's cross-origin isolation headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(ISOLATION_HEADERS)
        return response


def static_files() -> StaticFiles:
    """The page's scripts, style sheet and onnxruntime-web, under /static."""
    return IsolatedStaticFiles(directory=WEB_DIR)
