"""A person's conversation with the support desk, in the browser."""

from __future__ import annotations

import json
import re
import time
import uuid

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from tests.ui.conftest import artifacts, open_home


def new_session(page, server, flow: str = "support") -> str:
    open_home(page, server)
    seen: list[str] = []  # what the page's network did from the click on, for a failure's message
    page.on("request", lambda request: seen.append(f"request {request.method} {request.url}"))
    page.on("requestfailed", lambda request: seen.append(f"failed {request.url}: {request.failure}"))
    page.on("response", lambda response: seen.append(f"response {response.status} {response.url}"))
    button = page.locator(f'[data-new-session="{flow}"]')
    button.click()
    try:
        # the POST and the next page's load, under the whole parallel suite: a wider bound than the
        # context's 15 s (a CI run once went past it here; what the page said is kept if it fails)
        page.wait_for_url(re.compile(rf"/flows/{flow}/sessions/[^/]+/$"), timeout=45_000)
    except PlaywrightTimeout as timeout:
        said = page.locator("#flows-home-error").all_text_contents()
        page.screenshot(path=artifacts() / f"new-session-{flow}-failed.png")
        message = (f"no conversation page after 'New session' (at {page.url}; the page said {said}; "
                   f"the button is {'disabled' if button.is_disabled() else 'enabled'}; "
                   f"the network since the click: {seen})\n" + server.what_it_is_doing())
        raise AssertionError(message) from timeout
    expect(page.locator("#flows-status")).to_have_text("Ready.")
    return page.url


def say(page, text: str) -> None:
    page.get_by_label("Your message").fill(text)
    page.get_by_label("Your message").press("Enter")


def two_turns(page, second: str, answer: str) -> None:
    """"hello", then ``second``, whose reply says ``answer``; both runs over."""
    say(page, "hello")
    expect(page.locator("#flows-status")).to_have_text("Ready.")
    say(page, second)
    expect(page.locator(".flows-message.flows-assistant").nth(1)).to_contain_text(answer)
    expect(page.locator("#flows-status")).to_have_text("Ready.")


def count_most_replies(page) -> None:
    """Records the most assistant messages the page ever showed at once (``window.flowsMostReplies``)."""
    page.evaluate("""() => { window.flowsMostReplies = 0; new MutationObserver(() => {
        const shown = document.querySelectorAll(".flows-message.flows-assistant").length;
        window.flowsMostReplies = Math.max(window.flowsMostReplies, shown);
      }).observe(document.getElementById("flows-messages"), {childList: true, subtree: true}); }""")


def test_a_reply_streams_in_and_the_timeline_grows(browsing, ui_server):
    page = browsing.page
    new_session(page, ui_server)
    expect(page.locator(".flows-timeline .flows-step")).to_have_count(0)
    count_most_replies(page)
    say(page, "hello there")
    streaming = page.locator(".flows-message.flows-streaming")
    expect(streaming).to_contain_text("Hello!")  # part of the reply, while the run goes on
    partial = streaming.inner_text()
    expect(page.locator("#flows-stop")).to_be_visible()
    expect(page.locator(".flows-message.flows-assistant:not(.flows-streaming)")).to_contain_text("What do you need?")
    assert "What do you need?" not in partial
    expect(page.locator("#flows-status")).to_have_text("Ready.")
    expect(page.locator("#flows-stop")).to_be_hidden()
    # the user's message once, the reply once — also while the run ended (streamed and drawn from the state)
    expect(page.locator(".flows-message.flows-user")).to_have_count(1)
    expect(page.locator(".flows-message.flows-assistant")).to_have_count(1)
    assert page.evaluate("window.flowsMostReplies") == 1
    # start, classify, fallback
    expect(page.locator(".flows-timeline .flows-step")).to_have_count(3)
    page.screenshot(path=artifacts() / "conversation-1280.png", full_page=True)


def test_a_reply_stored_while_the_run_goes_on_shows_once(browsing, ui_server):
    """The streamed text gives way to the stored message when its node finishes, not when the run ends."""
    page = browsing.page
    new_session(page, ui_server, flow="tail")
    count_most_replies(page)
    ui_server.hold_flag.touch()  # the run stays in its last node until the page has been looked at
    try:
        say(page, "one two three")
        expect(page.locator("#flows-status")).to_have_text("Running file_it…")
        expect(page.locator(".flows-message.flows-assistant")).to_have_text(re.compile("you said: one two three"))
    finally:
        ui_server.hold_flag.unlink()
    expect(page.locator("#flows-status")).to_have_text("Ready.")
    assert page.evaluate("window.flowsMostReplies") == 1


def test_a_reply_the_state_holds_already_is_not_streamed_twice(browsing, ui_server):
    """Events can come later than a state read: here the socket holds them back until the reply is stored,
    so the state read that run_started makes finds the reply stored while its chunks are still to come."""
    page = browsing.page
    sockets: list = []
    held: list[str] = []

    def route(socket) -> None:
        server = socket.connect_to_server()
        server.on_message(lambda message: held.append(message) if sockets[1:] else socket.send(message))
        sockets.append(socket)

    page.route_web_socket(re.compile("/ws/flows/"), route)
    new_session(page, ui_server, flow="tail")
    count_most_replies(page)

    def stored_reply() -> int | None:
        """Where in ``held`` the reply's node_finished is (sent once its checkpoint was committed)."""
        for index, message in enumerate(held):
            event = json.loads(message).get("event") or {}
            if event.get("event") == "node_finished" and event.get("node") == "reply":
                return index
        return None

    ui_server.hold_flag.touch()  # the run stays in file_it, after the reply is stored
    try:
        sockets.append("holding")
        say(page, "one two three")
        deadline = time.monotonic() + 30
        while stored_reply() is None:
            assert time.monotonic() < deadline, f"the reply's node_finished never came: {held}"
            page.wait_for_timeout(20)  # Playwright delivers the socket's messages meanwhile
        before_it = stored_reply()
        for message in held[:before_it]:  # run_started, node_started, the chunks: not node_finished
            sockets[0].send(message)
        stored = page.locator(".flows-message.flows-assistant:not(.flows-streaming)")
        expect(stored).to_have_text(re.compile("you said: one two three"))
        expect(page.locator(".flows-message.flows-assistant")).to_have_count(1)
        assert page.evaluate("window.flowsMostReplies") == 1
        rest, sockets[1:] = held[before_it:], []
        for message in rest:
            sockets[0].send(message)
    finally:
        ui_server.hold_flag.unlink()
    expect(page.locator("#flows-status")).to_have_text("Ready.")
    assert page.evaluate("window.flowsMostReplies") == 1


LONG_QUESTION = "tell me about your opening hours, shipping, password, contact and payment"


def test_a_refund_question_survives_a_reload_and_approving_it_continues_the_run(browsing, ui_server):
    page = browsing.page
    new_session(page, ui_server)
    say(page, "I want a refund for order 12345, my e-mail is ann@example.com")
    card = page.locator(".flows-question")
    expect(card).to_contain_text("Approve this refund?")
    expect(card).to_contain_text("12345")
    expect(page.locator("#flows-status")).to_have_text("Waiting for your answer.")
    expect(page.locator("#flows-question-hint")).to_be_visible()  # a message would not answer it
    page.screenshot(path=artifacts() / "interrupt-card.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 520})  # too short for the messages and the card
    page.reload()
    expect(card).to_contain_text("Approve this refund?")
    expect(card).to_be_in_viewport(ratio=1)  # the page opens at its end: the question in view
    url = page.url
    card.get_by_label("your answer").fill("sorry about the shoes")
    card.get_by_label("your answer").press("Enter")  # Enter in the note decides nothing, reloads nothing
    assert page.url == url
    expect(card).to_have_count(1)
    card.get_by_role("button", name="Approve").click()
    expect(card).to_have_count(0)
    expect(page.locator("#flows-question-hint")).to_be_hidden()
    expect(page.locator(".flows-message.flows-assistant").last).to_contain_text(
        "Good news: your refund for order 12345 is approved")
    expect(page.locator(".flows-message.flows-assistant").last).to_contain_text("sorry about the shoes")
    expect(page.locator("#flows-status")).to_have_text("Ready.")


def test_stop_cancels_a_long_reply_and_the_session_stays_usable(browsing, ui_server):
    page = browsing.page
    new_session(page, ui_server)
    say(page, LONG_QUESTION)
    expect(page.locator(".flows-message.flows-streaming")).to_contain_text("We're open")
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#flows-status")).to_contain_text("Stopped")
    expect(page.locator(".flows-message.flows-streaming")).to_have_count(0)
    expect(page.locator("#flows-stop")).to_be_hidden()
    # the stopped reply was not recorded; what was checkpointed (the message, its classification) stays
    expect(page.locator(".flows-message.flows-assistant")).to_have_count(0)
    expect(page.locator(".flows-message.flows-user")).to_have_count(1)
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".flows-message.flows-assistant")).to_contain_text("We accept cards")
    expect(page.locator("#flows-status")).to_have_text("Ready.")
    say(page, "hello")
    expect(page.locator(".flows-message.flows-assistant").nth(1)).to_contain_text("What do you need?")
    expect(page.locator("#flows-status")).to_have_text("Ready.")


def test_a_reload_mid_run_reattaches_and_shows_the_reply_once(browsing, ui_server):
    page = browsing.page
    new_session(page, ui_server)
    say(page, LONG_QUESTION)
    expect(page.locator(".flows-message.flows-streaming")).to_contain_text("We're open")
    page.reload()
    streaming = page.locator(".flows-message.flows-streaming")
    expect(streaming).to_contain_text("We're open")  # the tokens so far, replayed, then live
    expect(page.locator("#flows-stop")).to_be_visible()
    count_most_replies(page)
    reply = page.locator(".flows-message.flows-assistant:not(.flows-streaming)")
    expect(reply).to_contain_text("We accept cards")
    assert page.evaluate("window.flowsMostReplies") == 1
    expect(reply).to_have_count(1)
    assert reply.inner_text().count("We're open Monday to Friday") == 1
    expect(page.locator(".flows-message.flows-user")).to_have_count(1)


def test_a_message_sent_in_one_page_appears_live_in_another(browsing, ui_server):
    page = browsing.page
    url = new_session(page, ui_server)
    other = browsing.new_page()
    other.goto(url)
    expect(other.locator("#flows-status")).to_have_text("Ready.")
    say(page, "hello from the first tab")
    expect(other.locator(".flows-message.flows-streaming")).to_contain_text("Hello!")
    expect(other.locator(".flows-message.flows-user")).to_have_text(re.compile("hello from the first tab"))
    expect(other.locator(".flows-message.flows-assistant:not(.flows-streaming)")).to_contain_text("What do you need?")


def test_editing_a_message_forks_and_the_switcher_shows_both_branches(browsing, ui_server):
    page = browsing.page
    new_session(page, ui_server)
    two_turns(page, "what are your opening hours?", "We're open")
    second = page.locator(".flows-message.flows-user").nth(1)
    second.get_by_role("button", name="edit this message").click()
    second.get_by_label("the edited message").fill("how much is shipping?")
    second.get_by_role("button", name="Save & regenerate").click()
    expect(page.locator(".flows-message.flows-assistant").nth(1)).to_contain_text("Shipping is free above")
    messages = page.locator(".flows-message .flows-message-text")
    expect(messages).to_have_count(4)
    switcher = page.locator(".flows-message.flows-user").nth(1).locator(".flows-branches")
    expect(switcher).to_contain_text("2/2")
    switcher.get_by_role("button", name="previous branch").click()
    expect(page.locator("#flows-fork")).to_be_visible()
    expect(page.locator(".flows-message.flows-user").nth(1)).to_contain_text("what are your opening hours?")
    expect(page.locator(".flows-message.flows-assistant").nth(1)).to_contain_text("We're open")
    expect(page.locator(".flows-message.flows-user").nth(1).locator(".flows-branches")).to_contain_text("1/2")
    page.locator(".flows-message.flows-user").nth(1).get_by_role("button", name="next branch").click()
    expect(page.locator(".flows-message.flows-user").nth(1)).to_contain_text("how much is shipping?")


def test_reset_after_a_confirmation_empties_the_session(browsing, ui_server):
    page = browsing.page
    new_session(page, ui_server)
    say(page, "hello")
    expect(page.locator(".flows-message.flows-assistant")).to_contain_text("What do you need?")
    page.get_by_role("tab", name="State").click()
    expect(page.locator("#flows-state")).to_contain_text("messages")
    page.get_by_role("button", name="Reset session…").click()
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".flows-message")).to_have_count(2)
    page.get_by_role("button", name="Reset session…").click()
    page.locator("#flows-reset-confirm").click()
    expect(page.locator(".flows-message")).to_have_count(0)
    expect(page.locator("#flows-status")).to_have_text("The session was reset.")
    page.reload()
    expect(page.locator("#flows-status")).to_have_text("Ready.")
    expect(page.locator(".flows-message")).to_have_count(0)


def test_the_page_works_at_390_pixels(browser, ui_server, browsing):
    page = browsing.page
    page.set_viewport_size({"width": 390, "height": 844})
    new_session(page, ui_server)
    say(page, "hello")
    expect(page.locator(".flows-message.flows-assistant")).to_contain_text("What do you need?")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the screen
    expect(page.locator("#flows-panel")).to_be_hidden()
    page.get_by_role("button", name="Details").click()
    expect(page.locator("#flows-panel")).to_be_visible()
    page.get_by_role("button", name="Details").click()
    page.screenshot(path=artifacts() / "conversation-390.png", full_page=True)


def api_path(server, url: str) -> str:
    """The API's path of the session a conversation page's ``url`` shows."""
    return url.removeprefix(server.url).replace("/flows/", "/api/flows/", 1)


def long_session(server, turns: int = 12) -> str:
    """A session of the ``flaky`` (echo) flow with ``turns`` long turns, made through the API."""
    session_id = f"long-{uuid.uuid4().hex[:8]}"
    with server.client() as http:
        for turn in range(turns):
            said = {"messages": [{"role": "user", "content": f"line {turn} " + "and so on " * 30}]}
            http.post(f"/api/flows/flaky/sessions/{session_id}/invoke/", json={"input": said}).raise_for_status()
    return f"{server.url}/flows/flaky/sessions/{session_id}/"


def test_the_newest_message_stays_in_view_unless_the_reader_scrolled_up(browsing, ui_server):
    page = browsing.page
    url = long_session(ui_server)
    page.goto(url)
    expect(page.locator("#flows-status")).to_have_text("Ready.")
    newest = page.locator(".flows-message.flows-assistant").last
    expect(newest).to_contain_text("echo: line 11")
    expect(newest).to_be_in_viewport()  # a long conversation opens at its end
    say(page, "one more")
    expect(newest).to_contain_text("echo: one more")
    expect(newest).to_be_in_viewport()
    page.mouse.wheel(0, -100_000)  # the reader goes up to read
    page.wait_for_function("window.scrollY === 0")
    with ui_server.client() as http:  # a message from elsewhere arrives live
        said = {"messages": [{"role": "user", "content": "from elsewhere"}]}
        http.post(api_path(ui_server, url) + "invoke/",
                  json={"input": said}).raise_for_status()
    expect(newest).to_contain_text("echo: from elsewhere")
    assert page.evaluate("window.scrollY") == 0  # left where they were reading


def test_a_flow_whose_messages_are_strings_gets_a_string(browsing, ui_server):
    page = browsing.page
    url = new_session(page, ui_server, "seed")
    say(page, "hello seed")
    expect(page.locator(".flows-message").last).to_contain_text("ack: hello seed")
    with ui_server.client() as http:
        state = http.get(api_path(ui_server, url) + "state/").json()
    assert state["state"]["messages"][:2] == ["hello seed", "ack: hello seed (turn 1)"]


def test_details_on_a_narrow_screen_scrolls_to_the_panel(browsing, ui_server):
    page = browsing.page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(long_session(ui_server))
    expect(page.locator("#flows-status")).to_have_text("Ready.")
    page.get_by_role("button", name="Details").click()
    expect(page.locator("#flows-panel")).to_be_in_viewport()


def test_a_failed_run_shows_its_error_and_retry_runs_it_again(browsing, ui_server):
    page = browsing.page
    new_session(page, ui_server, flow="flaky")
    # the page's reads of the state come late: Retry must not go by a drawing older than the failed run
    page.evaluate("""() => { const native = window.fetch;
      window.fetch = async (url, options) => {
        if (String(url).includes("/state/")) await new Promise((resolve) => setTimeout(resolve, 700));
        return native(url, options);
      }; }""")
    ui_server.fail_flag.touch()
    try:
        say(page, "are you there?")
        error = page.locator("#flows-run-error")
        expect(error).to_contain_text("node 'reply' failed on attempt 1/1: ConnectionError: the model did not answer")
        expect(page.locator("#flows-status")).to_have_text("The run failed.")
    finally:
        ui_server.fail_flag.unlink()
    page.get_by_role("button", name="Retry").click()
    expect(page.locator(".flows-message.flows-assistant")).to_have_text(re.compile("echo: are you there\\?"))
    expect(error).to_be_hidden()
    expect(page.locator(".flows-message.flows-user")).to_have_count(1)  # the message was not sent twice


def test_a_dropped_connection_reconnects_by_itself_and_says_so(browsing, ui_server):
    page = browsing.new_page()
    # keep a handle on the page's sockets, to drop one as a network would
    page.add_init_script("""(() => { const Native = window.WebSocket; window.flowsTestSockets = [];
      window.WebSocket = function (...args) {
        const s = new Native(...args); window.flowsTestSockets.push(s); return s;
      };
      Object.assign(window.WebSocket, {OPEN: Native.OPEN, CLOSED: Native.CLOSED, prototype: Native.prototype}); })()""")
    new_session(page, ui_server)
    page.evaluate("window.flowsTestSockets[0].close()")
    expect(page.locator("#flows-connection")).to_contain_text("Connection lost: reconnecting")
    expect(page.locator("#flows-connection")).to_have_text("Reconnected.")
    assert page.evaluate("window.flowsTestSockets.length") == 2
    say(page, "hello")
    expect(page.locator(".flows-message.flows-assistant")).to_contain_text("What do you need?")


def test_a_timeline_step_shows_old_and_new_and_continuing_from_it_forks(browsing, ui_server):
    page = browsing.page
    new_session(page, ui_server)
    two_turns(page, "how much is shipping?", "Shipping is free above")
    steps = page.locator(".flows-timeline .flows-step")
    expect(steps).to_have_count(6)
    classify = steps.nth(1)  # newest first: answer_faq, classify, input, fallback, classify, input
    classify.locator(".flows-step-head").press("Enter")  # keyboard: the step opens
    expect(classify.locator(".flows-change").filter(has_text="intent")).to_contain_text('"faq"')
    expect(classify.locator(".flows-old").first).to_be_visible()
    # back to the end of the first turn, and on from there
    steps.nth(3).locator(".flows-step-head").click()
    steps.nth(3).get_by_role("button", name="Continue from here").click()
    expect(page.locator("#flows-fork")).to_be_visible()
    expect(page.locator(".flows-message")).to_have_count(2)
    say(page, "what are your opening hours?")
    expect(page.locator("#flows-fork")).to_be_hidden()
    expect(page.locator(".flows-message.flows-assistant").nth(1)).to_contain_text("We're open")
    expect(page.locator(".flows-message")).to_have_count(4)
    expect(page.locator(".flows-message.flows-user").nth(1).locator(".flows-branches")).to_contain_text("2/2")
