/* flows UI: a value as readable, collapsible JSON (<details> per object and list). */
"use strict";

window.flowsJsonTree = (() => {
  const {el} = window.flowsApi;

  function scalar(value) {
    const kind = value === null ? "null" : typeof value;
    return el("span", {class: `flows-json-${kind}`, text: JSON.stringify(value)});
  }

  /** The tree of `value`; containers deeper than `open` levels start collapsed. */
  function tree(value, open = 1, depth = 0) {
    if (value === null || typeof value !== "object") return scalar(value);
    const entries = Array.isArray(value) ? value.map((item, index) => [index, item]) : Object.entries(value);
    const [left, right] = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
    if (entries.length === 0) return el("span", {class: "flows-json-empty", text: left + right});
    const summary = Array.isArray(value) ? `${left} ${entries.length} item${entries.length === 1 ? "" : "s"} ${right}`
      : `${left} ${entries.map(([key]) => key).slice(0, 4).join(", ")}${entries.length > 4 ? ", …" : ""} ${right}`;
    const details = el("details", {open: depth < open}, el("summary", {text: summary}));
    const body = el("ul", {class: "flows-json-entries"});
    for (const [key, item] of entries) {
      body.append(el("li", {}, el("span", {class: "flows-json-key", text: `${Array.isArray(value) ? key : JSON.stringify(key)}: `}),
        tree(item, open, depth + 1)));
    }
    details.append(body);
    return details;
  }

  return {tree};
})();
