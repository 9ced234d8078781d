/* flows UI, home page: the user's sessions (from the API) and "new session". */
"use strict";

(() => {
  const {config, call, el, when} = window.flowsApi;
  const list = document.getElementById("flows-sessions");
  const empty = document.getElementById("flows-sessions-empty");
  const error = document.getElementById("flows-home-error");

  function conversationUrl(flow, sessionId) {
    const parts = {FLOW: encodeURIComponent(flow), SESSION: encodeURIComponent(sessionId)};
    return config.conversation.replace(/FLOW|SESSION/g, (name) => parts[name]);
  }

  function showError(message) {
    error.textContent = message;
    error.hidden = false;
  }

  async function sessionsOf(flow) {
    const page = await call("GET", `flows/${encodeURIComponent(flow)}/sessions/?limit=50`);
    return page.results;
  }

  async function load() {
    const flows = [...document.querySelectorAll("[data-flow]")].map((card) => card.dataset.flow);
    try {
      const sessions = (await Promise.all(flows.map(sessionsOf))).flat();
      sessions.sort((a, b) => (b.updated_at || "").localeCompare(a.updated_at || ""));
      list.replaceChildren(...sessions.map((session) => el("li", {class: "flows-session"},
        el("a", {href: conversationUrl(session.flow, session.session_id)},
          el("span", {class: "flows-session-id", text: session.session_id}),
          el("span", {class: "flows-muted", text: ` · ${session.flow}`})),
        el("span", {class: `flows-pill flows-pill-${session.status}`, text: session.status}),
        el("time", {class: "flows-muted", datetime: session.updated_at, text: when(session.updated_at)}))));
      empty.hidden = sessions.length > 0;
    } catch (failure) {
      showError(`Could not load your sessions: ${failure.message}`);
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }

  for (const button of document.querySelectorAll("[data-new-session]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const session = await call("POST", `flows/${encodeURIComponent(button.dataset.newSession)}/sessions/`, {});
        window.location.assign(conversationUrl(session.flow, session.session_id));
      } catch (failure) {
        showError(`Could not start a session: ${failure.message}`);
        button.disabled = false;
      }
    });
  }

  load();
})();
