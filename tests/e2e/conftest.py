"""Browser tests: the real app under uvicorn on a free port (SQLite file in tmp_path), driven by
Debian's chromium through Playwright.

Marked `browser`: `make test` deselects them, .ci/run installs chromium and runs them. A missing
chromium or Playwright package fails the test with the command that fixes it; it never skips.
Playwright's own browser downloads are never used (`executable_path` is Debian's chromium).
"""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from carebridge.app import create_app
from carebridge.config import Settings
from tests.access.consent_population import load
from tests.conftest import bearer, sharing_population

CHROMIUM = Path("/usr/bin/chromium")


@dataclass(frozen=True)
class LiveServer:
    url: str
    settings: Settings

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The app on 127.0.0.1:<free port>, holding the sharing population."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'carebridge.db'}",
        export_dir=tmp_path / "export",
        token_key_dir=tmp_path / "keys",
        base_url=url,
    )
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="carebridge-e2e", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail(f"the app did not start on {url}")
        time.sleep(0.05)
    live = LiveServer(url, settings)
    with live.client() as client:
        load(client, bearer(settings, "system/*.cruds"), sharing_population())
    try:
        yield live
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        app.state.engine.dispose()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Debian's chromium under Playwright (a failure, never a skip, when either is missing)."""
    if importlib.util.find_spec("playwright") is None:
        pytest.fail("the playwright package is missing: .venv/bin/pip install -e '.[dev]'")
    if not CHROMIUM.exists():
        pytest.fail(
            f"Debian's chromium is missing at {CHROMIUM}: "
            "apt-get install -y --no-install-recommends chromium"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any, live_server: LiveServer) -> Iterator[Any]:
    """A fresh browser context (no cookies) with the app as its base URL. Script errors, console
    errors (e.g. a Content-Security-Policy violation) and a script or style that fails to load
    fail the test; a page answered with a 4xx on purpose (a refused sign-in) does not."""
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1200, "height": 800}
    )
    page = context.new_page()
    problems: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    def response(answer: Any) -> None:
        if answer.status >= 400 and answer.request.resource_type != "document":
            problems.append(f"{answer.status} {answer.url}")

    page.on("console", console)
    page.on("response", response)
    page.on("pageerror", lambda error: problems.append(str(error)))
    yield page
    context.close()
    assert not problems, f"the browser reported errors: {problems}"
