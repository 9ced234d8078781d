/* flows UI, a conversation: a client of the session's WebSocket and of the REST API.
 *
 * The socket gives the session as it stands, then the events so far of a run
 * going on (so a reload or a second tab catches up), then every event of every
 * run on the session. The page draws messages from the state (read again from
 * the API when a node finished) and a reply in progress from its chunks; a
 * reconnect starts the drawing over from the state, so no text shows twice.
 */
"use strict";

(() => {
  const {config, call, sessionPath, el} = window.flowsApi;
  const {tree} = window.flowsJsonTree;
  const $ = (id) => document.getElementById(id);
  const path = (rest = "") => sessionPath(config.flow, config.session_id, rest);

  const page = {
    socket: null,
    retryDelay: 500,
    everConnected: false,
    closing: false,
    current: null,          // the state drawn: {state, checkpoint_id, next, interrupts}
    viewing: null,          // a checkpoint id when the page shows an earlier point or another branch
    run: null,              // the run going on: {run_id, node}
    replies: new Map(),     // task id -> the <li> of a reply in progress (.done once its node finished)
    stopping: false,        // Stop was pressed before the run's id was known
    cancelled: new Set(),   // runs this page stopped (their end offers Continue)
    unsent: null,           // the text of a message not yet accepted (put back if refused)
    following: true,        // the reader is at the bottom: new messages scroll into view
    lastInput: null,        // what the last run was started with (for "retry")
    forks: new Map(),       // checkpoint id -> [child summaries] where the session branched
    inputs: [],             // the displayed branch's input checkpoints, oldest first
    refreshing: null,
    reads: 0,               // numbers the state reads: an older answer is never drawn over a newer one
    timelineReads: 0,
    timelineNext: null,
  };

  // -- the socket ---------------------------------------------------------------------------------

  function socketUrl() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    return `${scheme}://${location.host}/${config.socket}`;
  }

  function connect() {
    let socket;
    try {
      socket = new WebSocket(socketUrl());
    } catch (error) {
      return fatal(`Cannot open the session's socket: ${error.message}`);
    }
    page.socket = socket;
    socket.addEventListener("open", () => {
      page.retryDelay = 500;
      if (page.everConnected) banner("Reconnected.", 2500);
      page.everConnected = true;
    });
    socket.addEventListener("message", (message) => receive(JSON.parse(message.data)));
    socket.addEventListener("close", (event) => {
      if (page.closing) return;
      if (event.code === 4401) return fatal("You are signed out: sign in again to see this session.");
      if (event.code === 4403 || event.code === 4404) return fatal("There is no such session here.");
      if (event.code === 4400) return fatal("This is not a valid session id.");
      banner(`Connection lost: reconnecting in ${Math.round(page.retryDelay / 1000)} s…`);
      setTimeout(connect, page.retryDelay);
      page.retryDelay = Math.min(page.retryDelay * 2, 10000);
    });
  }

  function send(message) {
    if (!page.socket || page.socket.readyState !== WebSocket.OPEN) {
      banner("Not connected: try again in a moment.", 3000);
      return false;
    }
    page.socket.send(JSON.stringify(message));
    return true;
  }

  function receive(message) {
    if (message.type === "state") {
      page.replies.forEach((item) => item.remove());
      page.replies.clear();
      page.run = null;
      if (page.viewing === null) draw(message);
      status(message.status === "interrupted" ? "Waiting for your answer." : statusText(message.status));
      busy(false);
      if (message.status === "failed") showLastError();
      refreshTimeline();
      refreshForks();
    } else if (message.type === "event") {
      onEvent(message.run_id, message.event);
    } else if (message.type === "accepted") {
      page.unsent = null;
      if (message.run_id && message.action !== "cancel") {
        page.run = page.run || {run_id: message.run_id};
        if (page.stopping) stop();
      }
    } else if (message.type === "error") {
      pendingInputs().forEach((item) => item.remove());
      if (page.unsent !== null && !$("flows-input").value) $("flows-input").value = page.unsent;  // nothing lost
      page.unsent = null;
      page.stopping = false;
      busy(page.run !== null);
      banner(message.detail || message.code, 6000);
      refreshState();
    }
  }

  function statusText(value) {
    return {idle: "Ready.", running: "Running…", interrupted: "Waiting for your answer.", failed: "The last run failed."}[value]
      || (value ? `${value}.` : "Ready.");
  }

  // -- events ---------------------------------------------------------------------------------------

  function onEvent(runId, event) {
    const kind = event.event;
    if (kind === "run_started") {
      page.run = {run_id: runId, node: null};
      hideRunError();
      busy(true);
      status("Running…");
      refreshState();
    } else if (kind === "node_started") {
      if (page.run) page.run.node = event.node;
      const retried = page.replies.get(event.task_id);
      if (retried && event.attempt > 1) retried.reset();  // a retry writes its reply anew
      status(`Running ${event.node}…`);
      highlight(event.node);
    } else if (kind === "chunk") {
      if (page.viewing !== null) return;  // another branch is shown: the head's reply is not part of it
      // the engine's run (a continued run keeps its id: an answer, a retry), as the state names it
      const engineRun = event.run_id || runId;
      if (holds(page.current, engineRun, event.step, event.node)) return;  // drawn from the state already
      reply(event.task_id, event.node, engineRun, event.step).append(typeof event.chunk === "string" ? event.chunk : JSON.stringify(event.chunk));
      scrollDown();
    } else if (kind === "node_finished") {
      const finished = page.replies.get(event.task_id);
      if (finished) finished.done = true;  // the state holds it now: the next drawing drops this one
      refreshState();
      refreshTimeline();
    } else if (kind === "interrupted") {
      if (!endRun(runId)) return;
      status("Waiting for your answer.");
      refreshState();
      refreshTimeline();
    } else if (kind === "run_finished") {
      if (!endRun(runId)) return;
      status("Ready.");
      if (page.viewing === null && event.state) {
        refreshState();
      }
      refreshTimeline();
      refreshForks();
    } else if (kind === "run_failed") {
      const error = event.error || {};
      const mine = page.cancelled.delete(runId);
      if (!endRun(runId)) return;
      if (error.type === "RunSuperseded" || (error.type === "RunStopped" && !mine)) {
        status("Stopped: a newer message took over, or another page stopped it.");
      } else if (error.type === "RunStopped") {
        status("Stopped.");
        // what it checkpointed stays: "continue" runs the rest; a new message goes on from there too
        showRunError("The run was stopped.", "Continue");
      } else {
        status("The run failed.");
        // a NodeError's message names the node, the attempt and the node's own error
        showRunError(error.type === "NodeError" ? error.message : `${error.type || "Error"}: ${error.message || "the run failed"}`);
      }
      refreshState();
      refreshTimeline();
    }
  }

  /** The run `runId` ended: false when it is not the run this page follows (a newer one goes on). */
  function endRun(runId) {
    if (page.run && page.run.run_id && runId && page.run.run_id !== runId) return false;
    page.run = null;
    page.stopping = false;
    page.replies.forEach((item) => item.remove());
    page.replies.clear();
    highlight(null);
    busy(false);
    return true;
  }

  function reply(taskId, node, runId, step) {
    let item = page.replies.get(taskId);
    if (!item) {
      const text = el("div", {class: "flows-message-text"});
      item = el("li", {class: "flows-message flows-assistant flows-streaming", "data-node": node, "aria-busy": "true"},
        el("span", {class: "flows-role flows-node", text: node}), text);
      item.append = (piece) => { text.textContent += piece; };
      item.reset = () => { text.textContent = ""; };
      Object.assign(item, {runId, step, node});
      $("flows-messages").append(item);
      page.replies.set(taskId, item);
    }
    return item;
  }

  // -- the state ------------------------------------------------------------------------------------

  /** Reads the drawn state again (the head, or the checkpoint viewed); calls close together share one read. */
  function refreshState() {
    if (page.refreshing) return page.refreshing;
    page.refreshing = (async () => {
      await new Promise((resolve) => setTimeout(resolve, 30));
      page.refreshing = null;
      const read = ++page.reads;
      try {
        const query = page.viewing ? `?checkpoint_id=${encodeURIComponent(page.viewing)}` : "";
        const data = await call("GET", path(`state/${query}`));
        if (read === page.reads) draw(data);
      } catch (failure) {
        readFailed(failure);
      }
    })();
    return page.refreshing;
  }

  function readFailed(failure) {
    if (failure.status === 404) return fatal("There is no such session here.");
    if (failure.code === "checkpoint_not_found" && page.viewing) {  // rolled back, reset or pruned meanwhile
      banner("That point of the conversation is gone: back to the latest.", 5000);
      return leaveView();
    }
    banner(`Could not read the session: ${failure.message}`, 5000);
  }

  /** Whether the state `data` holds what `node` wrote at `step` of run `runId` (a state can be newer
   * than the events received so far: a reply it holds is not streamed as well). */
  function holds(data, runId, step, node) {
    if (!data || data.run_id !== runId || data.step === null) return false;
    // a later step is written after this one; at this very step, a node still to run (a question it
    // asked, a retry) has not written its reply yet
    return data.step > step || (data.step === step && !(data.next || []).includes(node));
  }

  function settleReplies(data) {
    for (const item of page.replies.values()) {
      if (holds(data, item.runId, item.step, item.node)) item.done = true;
    }
  }

  function draw(data) {
    page.current = data;
    if (page.viewing === null) settleReplies(data);
    const state = data.state || {};
    if (config.chat) drawMessages(state[config.messages_field] || []);
    else {
      $("flows-plain-state").hidden = false;
      $("flows-plain-state").textContent = JSON.stringify(state, null, 2);
    }
    drawQuestions(page.viewing ? [] : data.interrupts || []);
    scrollDown();  // a question's card, below the messages, comes into view too
    $("flows-state").replaceChildren(tree(state, 1));
  }

  function roleOf(message) {
    if (typeof message === "string") return "user";
    return (message && message.role) || "assistant";
  }

  function textOf(message) {
    if (typeof message === "string") return message;
    if (message && typeof message.content === "string") return message.content;
    return JSON.stringify(message);
  }

  function drawMessages(messages) {
    const list = $("flows-messages");
    for (const [taskId, item] of page.replies) {
      if (item.done) { item.remove(); page.replies.delete(taskId); }
    }
    const streaming = [...page.replies.values()];
    const pending = pendingInputs().filter((item) => !messages.some((message) => textOf(message) === item.dataset.text));
    const editing = list.querySelector(".flows-edit");
    if (editing) return;  // never redraw under someone typing an edit; the next drawing catches up
    let userIndex = -1;
    const users = messages.filter((message) => roleOf(message) === "user").length;
    const items = messages.map((message, index) => {
      const role = roleOf(message);
      const item = el("li", {class: `flows-message flows-${role}`, "data-index": index},
        el("span", {class: "flows-role", text: role}),
        el("div", {class: "flows-message-text", text: textOf(message)}));
      if (role === "user") {
        userIndex += 1;
        item.append(messageTools(item, message, users - 1 - userIndex));
      }
      return item;
    });
    list.replaceChildren(...items, ...pending, ...streaming);
    scrollDown();
  }

  /** Edit, and the branch switcher, of the user message that is `fromEnd` user messages before the last. */
  function messageTools(item, message, fromEnd) {
    const tools = el("div", {class: "flows-message-tools"});
    const input = inputFor(fromEnd);
    if (input) {
      const siblings = (page.forks.get(input.parent_id) || []).filter((child) => child.node === input.node);
      const at = siblings.findIndex((child) => child.checkpoint_id === input.checkpoint_id);
      if (siblings.length > 1 && at >= 0) {
        tools.append(el("span", {class: "flows-branches", role: "group", "aria-label": "branches"},
          el("button", {type: "button", class: "flows-link", "aria-label": "previous branch", disabled: at === 0,
            onclick: () => viewBranch(siblings[at - 1])}, "‹"),
          el("span", {class: "flows-branch-at", text: `${at + 1}/${siblings.length}`}),
          el("button", {type: "button", class: "flows-link", "aria-label": "next branch", disabled: at === siblings.length - 1,
            onclick: () => viewBranch(siblings[at + 1])}, "›")));
      }
    }
    if (input && input.parent_id) {  // a session's very first message has no checkpoint before it to fork from
      tools.append(el("button", {type: "button", class: "flows-link", "aria-label": "edit this message",
        onclick: () => editMessage(item, message, fromEnd)}, "Edit"));
    }
    return tools;
  }

  function inputFor(fromEnd) {
    return page.inputs[page.inputs.length - 1 - fromEnd] || null;
  }

  // -- sending --------------------------------------------------------------------------------------

  /** Whether a message is sent as plain text: the field's declared type says so, or (a plain `list`)
   * the messages already there are strings; else it is a chat message `{role, content}`. */
  function sendsText() {
    if (config.messages_as) return config.messages_as === "text";
    const stored = (page.current && page.current.state[config.messages_field]) || [];
    return stored.length > 0 && typeof stored[stored.length - 1] === "string";
  }

  function inputFrom(text) {
    if (config.chat) return {[config.messages_field]: [sendsText() ? text : {role: "user", content: text}]};
    return text.trim() ? JSON.parse(text) : null;
  }

  function start(body, shown, from = page.viewing) {
    const message = {type: "run", on_busy: config.on_busy, ...body};
    if (from) message.checkpoint_id = from;
    if (!send(message)) return false;
    page.lastInput = body;
    page.unsent = shown;
    if (page.viewing) leaveView(false);
    if (shown) {
      $("flows-messages").append(el("li", {class: "flows-message flows-user flows-pending", "data-text": shown},
        el("span", {class: "flows-role", text: "user"}), el("div", {class: "flows-message-text", text: shown})));
      scrollDown(true);  // the sender wants to see what they sent, and the reply
    }
    hideRunError();
    busy(true);
    status("Starting…");
    return true;
  }

  function pendingInputs() {
    return [...document.querySelectorAll(".flows-pending")];
  }

  $("flows-composer").addEventListener("submit", (event) => {
    event.preventDefault();
    if ($("flows-send").disabled) return;  // reject: nothing is sent while a run goes on
    const field = $("flows-input");
    const text = field.value;
    if (!text.trim()) return;
    let input;
    try { input = inputFrom(text); } catch (error) { return banner(`Not JSON: ${error.message}`, 5000); }
    if (start({input}, config.chat ? text : null)) field.value = "";
  });

  $("flows-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && config.chat) {
      event.preventDefault();
      $("flows-composer").requestSubmit();
    }
  });

  function stop() {
    if (page.run && page.run.run_id) {
      page.stopping = false;
      page.cancelled.add(page.run.run_id);
      send({type: "cancel", run_id: page.run.run_id});
    } else {
      page.stopping = true;  // sent as soon as the run's id is known
    }
    status("Stopping…");
  }

  $("flows-stop").addEventListener("click", stop);

  $("flows-retry").addEventListener("click", async () => {
    const retry = $("flows-retry");
    if (retry.disabled) return;
    retry.disabled = true;
    try {
      // read the head now: the drawn state may predate the failed run's input checkpoint
      const head = await call("GET", path("state/"));
      hideRunError();
      // the session kept its last checkpoint: continuing runs the failed node again
      start(head.next && head.next.length ? {input: null} : page.lastInput || {input: null});
    } catch (failure) {
      readFailed(failure);
    } finally {
      retry.disabled = false;
    }
  });

  function busy(running) {
    const stop = $("flows-stop");
    stop.hidden = !running;
    const sendButton = $("flows-send");
    const hint = $("flows-busy-hint");
    if (!running) {
      $("flows-reset").disabled = false;
      sendButton.disabled = false;
      sendButton.textContent = "Send";
      hint.hidden = true;
      return;
    }
    $("flows-reset").disabled = true;
    const strategy = config.on_busy;
    sendButton.disabled = strategy === "reject";
    sendButton.textContent = {wait: "Queue", interrupt: "Interrupt & send", rollback: "Replace & send"}[strategy] || "Send";
    hint.hidden = false;
    hint.textContent = {
      reject: "A run is going: wait for it to end, or stop it.",
      wait: "A run is going: what you send now runs after it.",
      interrupt: "A run is going: sending stops it and runs your message on its work so far.",
      rollback: "A run is going: sending stops it, discards its work, and runs your message instead.",
    }[strategy] || "";
  }

  // -- questions (interrupts) -------------------------------------------------------------------

  const YES_NO = /^(approve|allow|confirm|continue|proceed|accept|is|are|do|does|should|shall|can|may|will)\b/i;

  function questionText(value) {
    if (typeof value === "string") return value;
    if (value && typeof value.question === "string") return value.question;
    return null;
  }

  function drawQuestions(questions) {
    const box = $("flows-questions");
    $("flows-question-hint").hidden = questions.length === 0;  // a message does not answer it (docs/ui.md)
    box.replaceChildren(...questions.map((question) => {
      const text = questionText(question.value);
      const details = question.value && typeof question.value === "object"
        ? Object.entries(question.value).filter(([key]) => key !== "question") : [];
      const yesNo = question.value && question.value.answer === "boolean" || (text && YES_NO.test(text) && text.trim().endsWith("?"));
      const card = el("section", {class: "flows-question", "aria-label": "a question for you", "data-question": question.id},
        el("h2", {class: "flows-question-title", text: text || `${question.node} asks`}),
        details.length ? el("dl", {class: "flows-question-details"},
          ...details.flatMap(([key, value]) => [el("dt", {text: key}), el("dd", {text: typeof value === "string" ? value : JSON.stringify(value)})]))
          : text ? null : el("pre", {class: "flows-json", text: JSON.stringify(question.value, null, 2)}));
      const form = el("form", {class: "flows-question-form"});
      const answer = el("input", {type: "text", name: "answer", "aria-label": "your answer",
        placeholder: yesNo ? "A note (optional)" : "Your answer (text or JSON)"});
      const respond = (value) => {  // answered by id: right with one question and with several
        if (start({resume: {[question.id]: value}}, null)) card.remove();
      };
      if (yesNo) {
        const withNote = (approved) => answer.value.trim() ? {approved, note: answer.value.trim()} : approved;
        form.append(answer,
          el("button", {type: "button", class: "flows-button flows-primary", onclick: () => respond(withNote(true))}, "Approve"),
          el("button", {type: "button", class: "flows-button flows-danger", onclick: () => respond(withNote(false))}, "Reject"));
        form.addEventListener("submit", (event) => event.preventDefault());  // Enter in the note decides nothing
      } else {
        form.append(answer, el("button", {type: "submit", class: "flows-button flows-primary"}, "Answer"));
        form.addEventListener("submit", (event) => {
          event.preventDefault();
          const raw = answer.value.trim();
          let value = raw;
          try { value = JSON.parse(raw); } catch (error) { value = raw; }
          respond(value);
        });
      }
      card.append(form);
      return card;
    }));
  }

  // -- the timeline, forks and branches ---------------------------------------------------------------

  async function refreshTimeline(more = false) {
    const list = $("flows-timeline");
    const read = ++page.timelineReads;
    try {
      let query = "?limit=30";
      if (more && page.timelineNext) query += `&before=${encodeURIComponent(page.timelineNext)}`;
      else if (page.viewing) query += `&before=${encodeURIComponent(page.viewing)}`;
      const results = [];
      if (!more && page.viewing) results.push(await call("GET", path(`checkpoints/${encodeURIComponent(page.viewing)}/`)));
      const found = await call("GET", path(`checkpoints/${query}`));
      if (read !== page.timelineReads) return;  // a newer read is on its way
      results.push(...found.results);
      page.timelineNext = found.next && results.length ? results[results.length - 1].checkpoint_id : null;
      const items = results.map(timelineItem);
      if (more) list.append(...items); else list.replaceChildren(...items);
      $("flows-timeline-more").hidden = !page.timelineNext;
      if (!more) await readInputs(results, found.next);
    } catch (failure) {
      if (read === page.timelineReads) readFailed(failure);
    }
  }

  const STEP_NAMES = {__start__: "input", __input__: "input", __update__: "state edited"};

  function timelineItem(meta) {
    const fields = meta.updated_fields.length ? meta.updated_fields.join(", ") : "nothing changed";
    const item = el("li", {class: "flows-step", "data-checkpoint": meta.checkpoint_id},
      el("button", {type: "button", class: "flows-step-head", "aria-expanded": "false"},
        el("span", {class: "flows-step-node", text: STEP_NAMES[meta.node] || meta.node || "input"}),
        el("span", {class: "flows-step-fields", text: fields}),
        el("time", {class: "flows-muted", datetime: meta.created_at, text: new Date(meta.created_at).toLocaleTimeString()})));
    const head = item.firstChild;
    head.addEventListener("click", async () => {
      const open = head.getAttribute("aria-expanded") === "true";
      head.setAttribute("aria-expanded", String(!open));
      const shown = item.querySelector(".flows-step-body");
      if (shown) { shown.hidden = open; return; }
      if (item.dataset.loading) return;
      item.dataset.loading = "1";
      item.append(await stepBody(meta));
    });
    return item;
  }

  async function stepBody(meta) {
    const body = el("div", {class: "flows-step-body"});
    try {
      const [after, before] = await Promise.all([
        call("GET", path(`checkpoints/${encodeURIComponent(meta.checkpoint_id)}/`)),
        meta.parent_id ? call("GET", path(`checkpoints/${encodeURIComponent(meta.parent_id)}/`)) : Promise.resolve({state: {}}),
      ]);
      for (const name of meta.updated_fields) {
        const change = (after.changes || {})[name] || {};
        const appended = change.op === "extend";
        body.append(el("div", {class: "flows-change"},
          el("strong", {text: name}),
          appended ? el("span", {class: "flows-muted", text: " appended"}) : null,
          appended ? null : el("div", {class: "flows-old"}, tree(before.state[name] === undefined ? null : before.state[name], 0)),
          el("div", {class: "flows-new"}, tree(appended ? change.value : after.state[name], 0))));
      }
    } catch (failure) {
      body.append(el("p", {class: "flows-error", text: failure.message}));
    }
    body.append(el("button", {type: "button", class: "flows-button", onclick: () => view(meta.checkpoint_id,
      "You are looking at an earlier point: what you send continues from here, on a new branch.")}, "Continue from here"));
    return body;
  }

  $("flows-timeline-more").addEventListener("click", () => refreshTimeline(true));

  /** The input checkpoints of the displayed branch (pages back until every user message has its own). */
  async function readInputs(firstPage, next) {
    if (!config.chat) return;
    const state = (page.current && page.current.state) || {};
    const wanted = (state[config.messages_field] || []).filter((message) => roleOf(message) === "user").length;
    const isInput = (meta) => (meta.node === null || meta.node === "__start__" || meta.node === "__input__")
      && meta.updated_fields.includes(config.messages_field);
    const inputs = firstPage.filter(isInput);
    let cursor = next && firstPage.length ? firstPage[firstPage.length - 1].checkpoint_id : null;
    while (inputs.length < wanted && cursor) {
      const found = await call("GET", path(`checkpoints/?limit=100&before=${encodeURIComponent(cursor)}`));
      inputs.push(...found.results.filter(isInput));
      cursor = found.next && found.results.length ? found.results[found.results.length - 1].checkpoint_id : null;
    }
    page.inputs = inputs.reverse();
    if (page.current) drawMessages(page.current.state[config.messages_field] || []);  // the newest state drawn
  }

  async function refreshForks() {
    try {
      const found = await call("GET", path("branches/"));
      page.forks = new Map(found.results.map((fork) => [fork.checkpoint_id, fork.children]));
      if (page.current && config.chat) drawMessages(page.current.state[config.messages_field] || []);
    } catch (failure) {
      page.forks = new Map();
    }
  }

  function editMessage(item, message, fromEnd) {
    if (item.querySelector("form")) return;
    const field = el("textarea", {rows: 2, "aria-label": "the edited message"});
    field.value = textOf(message);
    const form = el("form", {class: "flows-edit"}, field,
      el("div", {class: "flows-composer-actions"},
        el("button", {type: "submit", class: "flows-button flows-primary"}, "Save & regenerate"),
        el("button", {type: "button", class: "flows-button", onclick: () => form.remove()}, "Cancel")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = inputFor(fromEnd);
      if (!input || !input.parent_id) return banner("This message cannot be edited: its checkpoint is gone.", 5000);
      form.remove();
      // the fork: from the checkpoint just before the message
      if (!start({input: inputFrom(field.value)}, field.value, input.parent_id)) item.append(form);
    });
    item.append(form);
    field.focus();
  }

  async function viewBranch(child) {
    await view(child.tip, "You are looking at another branch: what you send continues it.");
  }

  async function view(checkpointId, text) {
    page.viewing = checkpointId;
    $("flows-fork-text").textContent = text;
    $("flows-fork").hidden = false;
    await refreshState();
    await refreshTimeline();
  }

  function leaveView(redraw = true) {
    page.viewing = null;
    $("flows-fork").hidden = true;
    if (redraw) { refreshState(); refreshTimeline(); }
  }

  $("flows-fork-cancel").addEventListener("click", () => leaveView());

  // -- reset, panel, helpers --------------------------------------------------------------------------

  const dialog = $("flows-reset-dialog");
  $("flows-reset").addEventListener("click", () => dialog.showModal());
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "reset") return;
    try {
      await call("POST", path("reset/"), {});
      leaveView(false);
      hideRunError();
      draw({state: {}, interrupts: [], next: [], checkpoint_id: null});
      page.inputs = [];
      page.forks = new Map();
      refreshTimeline();
      status("The session was reset.");
    } catch (failure) {
      banner(`Could not reset: ${failure.message}`, 6000);
    }
  });

  for (const tab of document.querySelectorAll(".flows-tabs [role=tab]")) {
    tab.addEventListener("click", () => {
      for (const other of document.querySelectorAll(".flows-tabs [role=tab]")) {
        other.setAttribute("aria-selected", String(other === tab));
        $(other.getAttribute("aria-controls")).hidden = other !== tab;
      }
    });
  }

  $("flows-panel-toggle").addEventListener("click", (event) => {
    const open = document.body.classList.toggle("flows-panel-open");
    event.currentTarget.setAttribute("aria-expanded", String(open));
    // on a narrow screen the panel opens below the messages: show it, not the top of the page
    if (open) $("flows-panel").scrollIntoView({block: "start"});
  });

  function highlight(node) {
    for (const group of document.querySelectorAll(".flows-graph [data-node]")) {
      group.classList.toggle("flows-graph-active", group.dataset.node === node);
    }
  }

  let bannerTimer = null;
  function banner(text, hideAfter) {
    const box = $("flows-connection");
    box.textContent = text;
    box.hidden = false;
    clearTimeout(bannerTimer);
    if (hideAfter) bannerTimer = setTimeout(() => { box.hidden = true; }, hideAfter);
  }

  function fatal(text) {
    page.closing = true;
    banner(text);
    $("flows-composer").hidden = true;
    status("");
  }

  function status(text) {
    $("flows-status").textContent = text;
  }

  function showRunError(text, action = "Retry") {
    $("flows-run-error-text").textContent = text;
    $("flows-retry").textContent = action;
    $("flows-run-error").hidden = false;
  }

  async function showLastError() {
    try {
      const session = await call("GET", path(""));
      if (session.last_error) showRunError(session.last_error);
    } catch (failure) {
      readFailed(failure);
    }
  }

  function hideRunError() {
    $("flows-run-error").hidden = true;
  }

  /* The page scrolls (not the message list): new messages keep the newest in view while the
   * reader is at the bottom; one who scrolled up to read stays where they are until they send. */
  const FOLLOW_SLACK = 120;  // px from the bottom that still counts as "at the bottom"
  window.addEventListener("scroll", () => {
    const doc = document.scrollingElement;
    page.following = doc.scrollHeight - doc.scrollTop - doc.clientHeight <= FOLLOW_SLACK;
  }, {passive: true});

  function scrollDown(force = false) {
    if (!force && !page.following) return;
    page.following = true;
    window.scrollTo(0, document.scrollingElement.scrollHeight);
  }

  window.addEventListener("beforeunload", () => { page.closing = true; });
  connect();
})();
