// The dashboard's DOM helpers: finding an element, making one with its class and text, and
// writing text only when it changed (so a poll a second does not churn the page). Server
// text is only ever written with textContent, never innerHTML.

export const $ = (id) => document.getElementById(id);

export function make(tag, className, text) {
  const n = document.createElement(tag);
  if (className) n.className = className;
  if (text !== undefined) n.textContent = text;
  return n;
}

export function setText(node, text) { if (node.textContent !== text) node.textContent = text; }
