"""A person's conversation with the support desk, in the browser."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.ui.conftest import artifacts


def new_session(page, server, flow: str = "support") -> str:
    page.goto(server.url + "/")
    page.locator(f'[data-new-session="{flow}"]').click()
    page.wait_for_url(re.compile(rf"/flows/{flow}/sessions/[^/]+/$"))
    expect(page.locator("#flows-status")).to_have_text("Ready.")
    return page.url


def say(page, text: str) -> None:
    page.get_by_label("Your message").fill(text)
    page.get_by_label("Your message").press("Enter")


def test_a_reply_streams_in_and_the_timeline_grows(browsing, ui_server):
    page = browsing.page
    new_session(page, ui_server)
    expect(page.locator(".flows-timeline .flows-step")).to_have_count(0)
    say(page, "hello there")
    streaming = page.locator(".flows-message.flows-streaming")
    expect(streaming).to_contain_text("Hello!")  # part of the reply, while the run goes on
    partial = streaming.inner_text()
    expect(page.locator("#flows-stop")).to_be_visible()
    expect(page.locator(".flows-message.flows-assistant:not(.flows-streaming)")).to_contain_text("What do you need?")
    assert "What do you need?" not in partial
    expect(page.locator("#flows-status")).to_have_text("Ready.")
    expect(page.locator("#flows-stop")).to_be_hidden()
    # the user's message once, the reply once
    expect(page.locator(".flows-message.flows-user")).to_have_count(1)
    expect(page.locator(".flows-message.flows-assistant")).to_have_count(1)
    # start, classify, fallback
    expect(page.locator(".flows-timeline .flows-step")).to_have_count(3)
    page.screenshot(path=artifacts() / "conversation-1280.png", full_page=True)
