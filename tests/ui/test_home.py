"""The home page: the signed-in user's sessions of every flow, and the flows to start one with."""

from __future__ import annotations

import uuid

from playwright.sync_api import expect

from tests.ui.conftest import artifacts, open_home, sign_in

#: the most the sessions' box grows to (22rem of 16px, and its border), so the flows below move by at most that
LIST_HEIGHT = 22 * 16 + 2


def start(server, user: str, flow: str, session_id: str) -> None:
    with server.client(user) as http:
        http.post(f"/api/flows/{flow}/sessions/", json={"session_id": session_id}).raise_for_status()


def test_the_users_sessions_of_every_flow_are_listed_newest_activity_first(browsing, ui_server):
    tag = uuid.uuid4().hex[:8]
    older, newer, bobs = f"older-{tag}", f"newer-{tag}", f"bobs-{tag}"
    start(ui_server, "alice", "flaky", older)
    start(ui_server, "alice", "support", newer)
    start(ui_server, "bob", "flaky", bobs)
    with ui_server.client("alice") as http:  # activity, not creation, orders the list: the older one speaks last
        said = {"messages": [{"role": "user", "content": "hi"}]}
        http.post(f"/api/flows/flaky/sessions/{older}/invoke/", json={"input": said}).raise_for_status()

    page = browsing.page
    sessions = open_home(page, ui_server)
    ids = [text.strip() for text in sessions.locator(".flows-session-id").all_text_contents()]
    assert bobs not in ids  # another user's session is not shown
    assert ids.index(older) < ids.index(newer)
    row = sessions.locator(".flows-session", has_text=older)
    expect(row).to_contain_text("flaky")
    expect(row.locator(".flows-pill")).to_have_text("idle")
    expect(page.locator("#flows-sessions-empty")).to_be_hidden()
    row.get_by_role("link").click()
    page.wait_for_url(f"{ui_server.url}/flows/flaky/sessions/{older}/")
    expect(page.locator(".flows-message.flows-assistant")).to_contain_text("echo: hi")


def test_many_sessions_scroll_in_a_bounded_box_above_the_flows(browsing, ui_server):
    for number in range(14):
        start(ui_server, "alice", "flaky", f"many-{number}-{uuid.uuid4().hex[:6]}")
    page = browsing.page
    sessions = open_home(page, ui_server)
    box = sessions.bounding_box()
    assert box is not None and box["height"] <= LIST_HEIGHT
    assert sessions.evaluate("(list) => list.scrollHeight > list.clientHeight")  # the rest is a scroll away
    new_session = page.locator('[data-new-session="flaky"]')
    expect(new_session).to_be_in_viewport()
    page.screenshot(path=artifacts() / "home.png", full_page=True)
    new_session.click()
    page.wait_for_url(f"{ui_server.url}/flows/flaky/sessions/**")
    expect(page.locator("#flows-status")).to_have_text("Ready.")


def test_a_user_without_sessions_is_told_how_to_start_one(browser, ui_server):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        page = context.new_page()
        sign_in(page, ui_server, "carol")
        sessions = open_home(page, ui_server)
        expect(page.locator("#flows-sessions-empty")).to_have_text("No sessions yet: start one with a flow below.")
        expect(sessions).to_be_hidden()  # an empty box is not drawn
        expect(page.locator('[data-new-session="support"]')).to_be_visible()
    finally:
        context.close()
