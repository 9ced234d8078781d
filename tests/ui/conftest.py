"""The browser tests: Debian's Chromium driven by Playwright against the demo under uvicorn.

One server (with a task worker for background runs) and one browser serve the
whole module; each test gets a new browser context, signed in as ``alice``.
Every request the page makes is recorded and must go to 127.0.0.1, and the
console must stay free of errors: both are checked after each test.
Screenshots go to ``test-artifacts/ui/`` (``FLOWS_TEST_ARTIFACTS`` elsewhere).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.servers import ROOT, fresh_postgres_database, start_server
from tests.ui.flows import FAIL_FLAG, HOLD_FLAG

CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


def artifacts() -> Path:
    folder = Path(os.environ.get("FLOWS_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("FLOWS_TEST_CHROMIUM") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise RuntimeError(f"no Chromium at {path}: run the tests under scripts/with-test-services, which installs it")
    return path


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory):
    """The demo on PostgreSQL with a task worker; replies stream a word every 40 ms, so a test sees them arrive.

    ``live.fail_flag`` is a path: while it exists, the ``flaky`` flow's replies fail;
    while ``live.hold_flag`` exists, the ``tail`` flow's last node waits.
    """
    work = tmp_path_factory.mktemp("ui")
    fail_flag, hold_flag = work / "fail", work / "hold"
    # PostgreSQL, as a deployment with a web and a task process has: on SQLite their writes queue
    # behind one lock, and on this 2-core machine under the parallel suite a page then waited > 15 s
    with fresh_postgres_database() as database, start_server(
        work, database_url=database, task_workers=1, access_log=True,
        env={"FLOWS_DEMO_TOKEN_DELAY": "0.04", FAIL_FLAG: str(fail_flag), HOLD_FLAG: str(hold_flag)},
    ) as live:
        live.fail_flag, live.hold_flag = fail_flag, hold_flag
        yield live


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


class Watched:
    """A browser context's pages, with every request and console error they made."""

    def __init__(self, context) -> None:
        self.context = context
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.watch_context(context)

    def watch_context(self, context) -> None:
        """Records ``context``'s requests and console errors too (a second context of the same test)."""
        context.on("request", lambda request: self.requests.append(request.url))
        context.on("page", self.watch)

    def watch(self, page) -> None:
        def console(message) -> None:
            if message.type == "error":
                self.errors.append(f"{message.text} ({message.location.get('url', '')})")

        page.on("console", console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def new_page(self):
        return self.context.new_page()

    @property
    def page(self):
        """The first page (signed in)."""
        return self.context.pages[0]

    def outside(self) -> list[str]:
        return [url for url in self.requests
                if urlsplit(url).scheme not in ("data", "blob", "about") and urlsplit(url).hostname != "127.0.0.1"]


def sign_in(page, server, user: str = "alice") -> None:
    page.goto(server.url + "/accounts/login/")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/")


def open_home(page, server):
    """The home page once its sessions (which come from the API after the page) are drawn: clicking
    below the list before then can miss, as the list pushes the flows down (docs/ui.md, Decisions)."""
    page.goto(server.url + "/")
    sessions = page.locator("#flows-sessions")
    expect(sessions).to_have_attribute("aria-busy", "false")
    return sessions


@pytest.fixture
def browsing(browser, ui_server):
    """A new signed-in context; after the test, no request left 127.0.0.1 and the console had no error."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    watched = Watched(context)
    sign_in(watched.new_page(), ui_server)
    yield watched
    context.close()
    assert watched.requests, "the pages made no request at all"
    assert watched.outside() == [], "requests left 127.0.0.1"
    assert watched.errors == [], "errors in the browser console"
