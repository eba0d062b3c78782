"""GET /: the web page (plain HTML, CSS and JavaScript shipped in service/web/, no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, status
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).resolve().parents[1] / "web"

# The page is not part of the API: it stays out of openapi.yaml.
router = APIRouter(tags=["web"], include_in_schema=False)


@router.get("/", response_class=FileResponse, status_code=status.HTTP_200_OK)
async def index() -> FileResponse:
    """The web page: upload, classify, stylise, watch and download."""
    return FileResponse(WEB_DIR / "index.html", media_type="text/html")


def static_files() -> StaticFiles:
    """The page's script and style sheet, under /static."""
    return StaticFiles(directory=WEB_DIR)
