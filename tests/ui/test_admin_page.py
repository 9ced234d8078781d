"""The admin's session page as a person sees it, light and dark."""

from __future__ import annotations

import sys

import pytest
from playwright.sync_api import expect

from tests.servers import _run
from tests.ui.conftest import artifacts
from tests.ui.test_conversation import new_session, say


@pytest.fixture(scope="module")
def staff(ui_server):
    _run([sys.executable, "-c", "import django; django.setup(); from django.contrib.auth.models import User; "
          "User.objects.create_superuser('root', password='pw')"], ui_server.env)
    return "root"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_session_page_shows_an_append_as_the_appended_message(browser, ui_server, staff, browsing, scheme):
    page = browsing.page
    url = new_session(page, ui_server)
    say(page, "what are your opening hours?")
    expect(page.locator("#flows-status")).to_have_text("Ready.")
    session_id = url.rstrip("/").rsplit("/", 1)[1]
    admin = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    browsing.watch_context(admin)
    page = admin.new_page()
    page.goto(ui_server.url + "/admin/login/?next=/admin/flows/flowsession/")
    page.fill("#id_username", staff)
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.get_by_role("link", name=session_id).click()
    timeline = page.locator("#flows-timeline")
    appended = timeline.locator("code.added").first
    expect(appended).to_contain_text('"content":"We\'re open Monday')  # the new message itself, as JSON
    expect(timeline.locator("tr.run")).to_have_count(1)
    expect(page.locator("#flows-graph svg")).to_be_visible()
    colour, background = appended.evaluate(
        "e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]")
    assert colour != background
    page.screenshot(path=artifacts() / f"admin-session-{scheme}.png", full_page=True)
    page.locator("#flows-timeline").screenshot(path=artifacts() / f"admin-timeline-{scheme}.png")
    # the panels come after the change form, not behind it (Django floats #content-main)
    form_bottom = page.locator("#flowsession_form").evaluate("e => e.getBoundingClientRect().bottom")
    for heading in page.locator("#flows-session .flows-panel > h2").all():
        box = heading.bounding_box()
        assert box is not None and box["y"] >= form_bottom and box["height"] < 60, heading.inner_text()
    admin.close()
