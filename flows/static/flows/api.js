/* flows UI: a small client of flows' REST API (the session cookie, Django's CSRF token). */
"use strict";

window.flowsApi = (() => {
  const config = JSON.parse(document.getElementById("flows-config").textContent);

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.detail) || `HTTP ${status}`);
      this.status = status;
      this.code = body && body.code;
      this.body = body;
    }
  }

  /** A call to the API; resolves with the JSON body, rejects with an ApiError. */
  async function call(method, path, body) {
    const options = {method, credentials: "same-origin", headers: {Accept: "application/json"}};
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    if (method !== "GET") options.headers[config.csrf_header] = config.csrf_token;
    const response = await fetch(path.startsWith("/") ? path : config.api + path, options);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (error) { data = {detail: text.slice(0, 200)}; }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  function sessionPath(flow, sessionId, rest = "") {
    return `flows/${encodeURIComponent(flow)}/sessions/${encodeURIComponent(sessionId)}/${rest}`;
  }

  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function when(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    const seconds = (Date.now() - date.getTime()) / 1000;
    if (seconds < 60) return "just now";
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
    return date.toLocaleString();
  }

  return {config, call, sessionPath, el, when, ApiError};
})();
