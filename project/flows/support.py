"""A support-desk conversation, with no API key: a flow that does real work.

Every user turn is classified (FAQ, order status, refund, other). FAQs are
answered from a small knowledge base; order questions and refunds need an order
number (and, for a refund, an e-mail address), which the flow asks for over as
many turns as it takes, remembering what it already has. A refund then waits
for a human: the run stops at an ``interrupt`` that staff answer in the admin
or through the API (``resume``), and the flow continues with that decision.
Replies stream token by token (``stream=True`` nodes yield text, then their
state update).

Try it::

    manage.py flows_invoke support s1 --input '{"messages": ["where is my order"]}'
    manage.py flows_invoke support s1 --input '{"messages": ["it is 12345"]}'
    manage.py flows_state support s1
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypedDict

from flows.engine import END, START, FlowEngine, interrupt
from flows.engine.checkpointers import BaseCheckpointer

from .llm import stream_reply

ORDER_ID = re.compile(r"\b(?:ORD-?)?(\d{5,10})\b", re.IGNORECASE)
# An e-mail address is found from each "@" outwards, in bounded windows: a pattern that starts
# anywhere (``[\w.+-]+@...``) rescans a long run of letters from every position (quadratic).
EMAIL_LOCAL = re.compile(r"[\w.+-]{1,64}\Z")
EMAIL_DOMAIN = re.compile(r"[\w-]+\.[\w.-]+")
DOMAIN_MAX = 255
#: a longer message is answered with a request to shorten it, never read
MAX_MESSAGE_CHARS = 4000

INTENT_WORDS = {
    "refund": ("refund", "money back", "reimburse", "return my", "chargeback"),
    "order": ("where is my order", "order status", "track", "tracking", "delivery", "delivered", "package", "shipped"),
    "faq": (
        "opening hours", "hours", "open", "shipping cost", "shipping", "password", "contact", "payment", "pay with",
    ),
}

FAQ = {
    "hours": "We're open Monday to Friday, 9:00 to 18:00 CET, and answer e-mail within a day.",
    "shipping": "Shipping is free above €50; otherwise it's €4.90, and parcels arrive in 2–4 working days.",
    "password": "Use “Forgot password” on the sign-in page; the reset link is valid for one hour.",
    "contact": "Write to help@example.com or call +49 30 1234567 during opening hours.",
    "payment": "We accept cards, PayPal and bank transfer.",
}
FAQ_WORDS = {
    "hours": ("hours", "open"),
    "shipping": ("shipping",),
    "password": ("password",),
    "contact": ("contact",),
    "payment": ("payment", "pay with"),
}
NEEDED = {"order": ("order_id",), "refund": ("order_id", "email")}
QUESTIONS = {
    "order_id": "Could you give me your order number? It's the 5–10 digit number in your confirmation e-mail.",
    "email": "Which e-mail address did you order with? I need it to send the refund confirmation.",
}


ROLES = ("user", "assistant", "system")


def as_message(item: Any) -> dict:
    """A chat message: ``{"role", "content"}`` as given, or a plain string from the user."""
    if isinstance(item, str):
        return {"role": "user", "content": item}
    if isinstance(item, dict) and item.get("role") in ROLES and isinstance(item.get("content"), str):
        return item
    raise ValueError(f'a message is a string or {{"role": one of {ROLES}, "content": "text"}}, not {item!r:.80}')


def add_messages(old: list | None, new: Any) -> list:
    """Appends messages (one, or a list); a plain string is a message from the user."""
    items = new if isinstance(new, list) else [new]
    return (old or []) + [as_message(m) for m in items]


# It only ever appends, so the engine stores just the new messages each turn
# (and applies it to a session's very first input too).
add_messages.appends = True  # type: ignore[attr-defined]


class SupportState(TypedDict, total=False):
    messages: Annotated[list, add_messages]
    intent: str
    order_id: str | None
    email: str | None
    missing: list
    request: str  # the message that raised the current topic
    refund: dict | None
    turns: int


# -- understanding the user (an LLM with tool calls could do this; rules are enough here) --


def last_user_text(state: SupportState) -> str:
    for message in reversed(state.get("messages") or []):
        if message.get("role") == "user":
            return message.get("content", "")
    return ""


def find_email(text: str) -> str | None:
    """The first e-mail address in ``text``, in time linear in its length."""
    at = text.find("@")
    while at != -1:
        local = EMAIL_LOCAL.search(text, max(0, at - 64), at)
        domain = EMAIL_DOMAIN.match(text, at + 1, at + 1 + DOMAIN_MAX)
        if local and domain:
            return text[local.start():domain.end()]
        at = text.find("@", at + 1)
    return None


def classify(state: SupportState) -> dict:
    """Reads the newest message: intent, and any details it contains."""
    text = last_user_text(state)
    if len(text) > MAX_MESSAGE_CHARS:
        return {"turns": state.get("turns", 0) + 1, "intent": "too_long", "missing": []}
    lowered = text.lower()
    intent = next((name for name, words in INTENT_WORDS.items() if any(w in lowered for w in words)), None)
    updates: dict[str, Any] = {"turns": state.get("turns", 0) + 1}
    if intent is None:  # an answer to our question keeps the current topic
        intent = state.get("intent") if state.get("missing") else "other"
    else:
        updates["request"] = text
    updates["intent"] = intent
    if match := ORDER_ID.search(text):
        updates["order_id"] = match.group(1)
    if email := find_email(text):
        updates["email"] = email
    known = {**state, **updates}
    updates["missing"] = [name for name in NEEDED.get(intent or "", ()) if not known.get(name)]
    return updates


def route(state: SupportState) -> str:
    if state.get("missing"):
        return "ask_details"
    return {"faq": "answer_faq", "order": "order_status", "refund": "request_refund"}.get(
        state.get("intent", ""), "fallback"
    )


# -- replying ---------------------------------------------------------------------------------


async def say(draft: str, state: SupportState, **updates: Any) -> AsyncIterator[Any]:
    """Streams a reply, then yields the state update that records it."""
    parts = []
    async for token in stream_reply(draft, history=state.get("messages")):
        parts.append(token)
        yield token
    yield {"messages": [{"role": "assistant", "content": "".join(parts)}], **updates}


async def answer_faq(state: SupportState) -> AsyncIterator[Any]:
    lowered = last_user_text(state).lower()
    topics = [topic for topic, words in FAQ_WORDS.items() if any(w in lowered for w in words)]
    draft = " ".join(FAQ[topic] for topic in topics) or "Here's what I know: " + " ".join(FAQ.values())
    async for item in say(draft, state, intent=""):
        yield item


async def ask_details(state: SupportState) -> AsyncIterator[Any]:
    missing = state["missing"]
    lead = "I can help with that refund. " if state.get("intent") == "refund" else ""
    if state.get("intent") == "order":
        lead = "Let me look that up. "
    async for item in say(lead + QUESTIONS[missing[0]], state):
        yield item


def order_status_of(order_id: str) -> str:
    """A fake order system: a stable status per order number."""
    statuses = [
        "was shipped yesterday and should arrive on Thursday",
        "is being packed and leaves our warehouse today",
        "was delivered on Monday to the parcel box",
        "is waiting for the payment to clear",
    ]
    return statuses[int(hashlib.sha256(order_id.encode()).hexdigest(), 16) % len(statuses)]


async def order_status(state: SupportState) -> AsyncIterator[Any]:
    order_id = state["order_id"]
    assert order_id is not None  # routed here only once the order id is known
    draft = f"Order {order_id} {order_status_of(order_id)}. Anything else?"
    async for item in say(draft, state, intent=""):
        yield item


def request_refund(state: SupportState) -> dict:
    """Stops the run until a human decides; the answer is ``true``/``false`` or
    ``{"approved": bool, "note": "..."}``."""
    decision = interrupt(
        {
            "question": "Approve this refund?",
            "order_id": state["order_id"],
            "email": state["email"],
            "reason": state.get("request", ""),
        }
    )
    if isinstance(decision, dict):
        approved, note = bool(decision.get("approved")), str(decision.get("note", ""))
    else:
        approved, note = bool(decision), ""
    return {"refund": {"order_id": state["order_id"], "approved": approved, "note": note}}


async def refund_outcome(state: SupportState) -> AsyncIterator[Any]:
    refund = state["refund"] or {}
    if refund.get("approved"):
        draft = (f"Good news: your refund for order {refund['order_id']} is approved. "
                 f"You'll get a confirmation at {state['email']} and the money within 5 working days.")
    else:
        draft = f"I'm sorry, we can't refund order {refund.get('order_id')}."
    if refund.get("note"):
        draft += f" Note from our team: {refund['note']}"
    async for item in say(draft, state, intent="", order_id=None):
        yield item


async def fallback(state: SupportState) -> AsyncIterator[Any]:
    draft = ("Hello! I can answer questions about opening hours, shipping, payments and passwords, "
             "tell you where your order is, or start a refund. What do you need?")
    if state.get("intent") == "too_long":
        draft = (f"That message is too long for me ({len(last_user_text(state)):,} characters; I read up to "
                 f"{MAX_MESSAGE_CHARS:,}). Could you say it in a few sentences?")
    async for item in say(draft, state, intent=""):
        yield item


def build_support_flow(checkpointer: BaseCheckpointer | None = None) -> FlowEngine:
    flow = FlowEngine(state_schema=SupportState, checkpointer=checkpointer)
    flow.add_node("classify", classify)
    for name, node in (("answer_faq", answer_faq), ("ask_details", ask_details), ("order_status", order_status),
                       ("refund_outcome", refund_outcome), ("fallback", fallback)):
        flow.add_node(name, node, stream=True)
    flow.add_node("request_refund", request_refund)
    flow.add_edge(START, "classify")
    flow.add_conditional_edges(
        "classify", route, ["ask_details", "answer_faq", "order_status", "request_refund", "fallback"]
    )
    flow.add_edge("request_refund", "refund_outcome")
    for name in ("answer_faq", "ask_details", "order_status", "refund_outcome", "fallback"):
        flow.add_edge(name, END)
    return flow.build()
