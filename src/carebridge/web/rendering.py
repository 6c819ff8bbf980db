"""Templates, static files and the response headers every page carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from carebridge.web import session

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")

# Pages show health data: never cached, never framed, scripts and styles only from this site
# (htmx is served from /web/static; no inline script or style is used).
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "Referrer-Policy": "same-origin",  # "no-referrer" makes Chromium post `Origin: null`
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def static_files() -> StaticFiles:
    """CSS and the vendored htmx: no data, so served without a session (docs/security.md)."""
    return StaticFiles(directory=HERE / "static")


def render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    """A template with the session's CSRF token (empty when signed out) in its context."""
    full = {"csrf": session.csrf_token(request), "page": "", **context}
    return TEMPLATES.TemplateResponse(request, template, full, status_code=status)


def htmx_request(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def redirect(request: Request, url: str) -> Response:
    """303 for a page; for an HTMX request, `HX-Redirect` so the whole page goes, not a fragment."""
    if htmx_request(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def with_page_headers(response: Response) -> Response:
    for name, value in PAGE_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
