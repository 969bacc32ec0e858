// Small DOM helpers shared by the views: building elements, showing problems next to what caused them,
// and readable numbers.

import { ApiError } from "./api.js";

// el("button", {class: "x", onclick: f}, "text", child) -> element. No HTML strings: text stays text.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A view's template from index.html, cloned; `$` finds inside it by data-ref.
export function fromTemplate(id) {
  const fragment = document.getElementById(id).content.cloneNode(true);
  const root = fragment.firstElementChild;
  return root;
}

export function ref(root, name) {
  const found = root.querySelector(`[data-ref="${name}"]`);
  if (!found) throw new Error(`no data-ref=${name}`);
  return found;
}

// Shows an error (an ApiError's problem, or any Error) in `box` (an element with role=alert).
export function showError(box, error, lead = "") {
  box.replaceChildren();
  const problem = error instanceof ApiError ? error.problem : { title: "Something went wrong", detail: String(error?.message || error) };
  const title = sentence(lead || problem.title || "Request failed");
  box.append(el("strong", {}, title));
  if (problem.detail && sentence(problem.detail) !== title) box.append(" ", el("span", {}, ...withCode(sentence(problem.detail))));
  const fields = (problem.errors || []).filter((e) => e && e.msg && !String(problem.detail || "").includes(e.msg));
  if (fields.length) {
    box.append(el("ul", {}, fields.map((e) => el("li", {}, `${(e.loc || []).slice(1).join(".") || "request"}: ${e.msg}`))));
  }
  box.hidden = false;
  const folded = box.closest("details");
  if (folded) folded.open = true;
}

export function clearError(box) {
  box.replaceChildren();
  box.hidden = true;
}

// Routes a problem to the form control it names (problem.errors[].loc ends with the field's name): the box
// `[data-error-for=NAME]` inside `form`, else `fallback`. Returns the box used.
export function showProblemInForm(form, error, fallback, fieldBoxes = {}) {
  const problem = error instanceof ApiError ? error.problem : {};
  const named = (problem.errors || []).map((e) => (e.loc || []).at(-1)).find((name) => name && (fieldBoxes[name] || form.querySelector(`[data-error-for="${name}"]`)));
  const box = named ? fieldBoxes[named] || form.querySelector(`[data-error-for="${named}"]`) : fallback;
  showError(box, error);
  return box;
}

export function clearErrors(root) {
  for (const box of root.querySelectorAll('[role="alert"]')) clearError(box);
}

// `text in backticks` (the API's details quote headers and fields that way) -> <code> elements.
function withCode(text) {
  return text.split(/`([^`]+)`/).map((part, i) => (i % 2 ? el("code", {}, part) : part));
}

export function sentence(text) {
  const trimmed = String(text).trim();
  if (!trimmed) return "";
  const capital = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function bytes(n) {
  // no-break spaces: a size never wraps between its number and its unit
  if (n < 1024) return `${n}\u00a0B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)}\u00a0KB`;
  return `${(n / 1024 / 1024).toFixed(1)}\u00a0MB`;
}

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

export function shortId(id) {
  return id.length > 12 ? `${id.slice(0, 4)}…${id.slice(-6)}` : id;
}

// Saves a URL's bytes as a file: an object URL (already fetched with the key) or a presigned URL.
export function saveAs(url, filename) {
  const link = el("a", { href: url, download: filename, rel: "noopener" });
  document.body.append(link);
  link.click();
  link.remove();
}

export function stateBadge(state) {
  return el("span", { class: `badge state-${state}` }, state);
}
