// The page: sign in, then one view at a time, chosen by the URL's hash (#/new, #/models/ID,
// #/models/ID/harmonize). Ids only in the hash; the API key stays in sessionStorage.

import { ApiError, apiKey, displayURL, forgetApiKey, getJSON, query, setApiKey } from "./api.js";
import { renderHarmonize } from "./harmonize.js";
import { renderPaint } from "./paint.js";
import { renderModel } from "./model.js";
import { renderNew } from "./train.js";
import { clearError, el, shortId, showError, stateBadge, when } from "./ui.js";

const signIn = document.getElementById("sign-in");
const signInForm = document.getElementById("sign-in-form");
const keyInput = document.getElementById("api-key");
const keyError = document.getElementById("api-key-error");
const app = document.getElementById("app");
const nav = document.getElementById("main-nav");
const view = document.getElementById("view");

const session = {
  vocabulary: null,
  // Called by a view when it leaves (stops its polling, frees object URLs).
  leaveView: null,
};

// --- signing in -------------------------------------------------------------------------------------------

async function tryKey(key) {
  // Any authenticated read proves the key; the vocabulary is needed next anyway.
  return getJSON("/v1/vocabulary", { key });
}

signInForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearError(keyError);
  const key = keyInput.value.trim();
  if (!key) {
    showError(keyError, new Error("Paste your API key first."), "No key");
    keyInput.focus();
    return;
  }
  const button = signInForm.querySelector("button");
  button.disabled = true;
  try {
    session.vocabulary = await tryKey(key);
    setApiKey(key);
    keyInput.value = "";
    keyInput.removeAttribute("aria-invalid");
    enterApp();
  } catch (error) {
    const lead = error instanceof ApiError && error.status === 401 ? "This key was not accepted." : "";
    showError(keyError, error, lead);
    keyInput.setAttribute("aria-invalid", "true");
    keyInput.focus();
    keyInput.select();
  } finally {
    button.disabled = false;
  }
});

document.getElementById("sign-out").addEventListener("click", () => {
  forgetApiKey();
  leaveView();
  forgetThumbnails();
  modelList.replaceChildren();
  session.vocabulary = null;
  showSignIn();
});

function showSignIn(message) {
  app.hidden = true;
  nav.hidden = true;
  signIn.hidden = false;
  if (message) showError(keyError, message);
  keyInput.focus();
}

function enterApp() {
  signIn.hidden = true;
  app.hidden = false;
  nav.hidden = false;
  route();
}

// A 401 anywhere later (a revoked key) sends the person back to the sign-in form.
function onUnauthorized(error) {
  forgetApiKey();
  leaveView();
  forgetThumbnails();
  showSignIn(error);
}

// --- the models list ----------------------------------------------------------------------------------------

const modelList = document.getElementById("model-list");
const modelListEmpty = document.getElementById("model-list-empty");
const examples = document.getElementById("examples"); // what a model does, shown until the first one exists
const modelListMore = document.getElementById("model-list-more");
const modelListError = document.getElementById("model-list-error");
let modelCursor = null;

async function refreshModels(append = false) {
  clearError(modelListError);
  try {
    const page = await getJSON(`/v1/models?${query({ limit: 20, after: append ? modelCursor : null })}`);
    if (!append) modelList.replaceChildren();
    for (const model of page.data) modelList.append(modelItem(model));
    modelCursor = page.next_cursor;
    modelListMore.hidden = !modelCursor;
    modelListEmpty.hidden = modelList.children.length > 0;
    examples.hidden = modelList.children.length > 0;
    markCurrent();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return onUnauthorized(error);
    showError(modelListError, error, "Your models could not be listed.");
  }
}

modelListMore.addEventListener("click", () => refreshModels(true));

// model id -> its training image's displayable URL: the list is redrawn often, the images stay the same.
const thumbnails = new Map();

function thumbnailOf(model) {
  if (!thumbnails.has(model.id)) {
    const url = displayURL(model.input_url);
    url.catch(() => thumbnails.delete(model.id)); // a later redraw tries again
    thumbnails.set(model.id, url);
  }
  return thumbnails.get(model.id);
}

function forgetThumbnails() {
  for (const url of thumbnails.values()) url.then((u) => u.startsWith("blob:") && URL.revokeObjectURL(u)).catch(() => {});
  thumbnails.clear();
}

function modelItem(model) {
  const thumb = el("img", { class: "thumb", alt: "", width: 48, height: 48 });
  thumbnailOf(model).then((url) => (thumb.src = url)).catch(() => thumb.remove());
  const label = `${model.params.mode || "generation"} · ${model.params.preset || "paper"}`;
  const text = el(
    "span",
    { class: "model-item-text" },
    el("span", { class: "model-item-top" }, el("span", { class: "model-item-id" }, shortId(model.id)), stateBadge(model.state)),
    el("span", { class: "hint" }, label),
    el("span", { class: "hint" }, when(model.created_at)),
  );
  return el(
    "li",
    { dataset: { modelId: model.id } },
    // No aria-label: the link's name is its visible text (id, state, mode, date), so a person using speech
    // input can say what they see (axe: label-content-name-mismatch).
    el("a", { href: `#/models/${model.id}` }, thumb, text),
  );
}

function markCurrent() {
  const current = (location.hash.match(/^#\/models\/([^/]+)/) || [])[1];
  for (const item of modelList.children) {
    const link = item.querySelector("a");
    if (item.dataset.modelId === current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

// --- routing ---------------------------------------------------------------------------------------------------

function leaveView() {
  if (session.leaveView) session.leaveView();
  session.leaveView = null;
  view.replaceChildren();
}

const context = {
  get vocabulary() {
    return session.vocabulary;
  },
  refreshModels,
  onUnauthorized,
  navigate(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
};

function route() {
  if (!apiKey()) return;
  leaveView();
  refreshModels(); // also marks the current one
  const hash = location.hash || "#/new";
  const harmonize = hash.match(/^#\/models\/([a-z]{2,4}_[0-9a-f]+)\/harmonize$/);
  const paint = hash.match(/^#\/models\/([a-z]{2,4}_[0-9a-f]+)\/paint$/);
  const model = hash.match(/^#\/models\/([a-z]{2,4}_[0-9a-f]+)$/);
  let shown;
  if (harmonize) shown = renderHarmonize(view, harmonize[1], context);
  else if (paint) shown = renderPaint(view, paint[1], context);
  else if (model) shown = renderModel(view, model[1], context);
  else shown = renderNew(view, context);
  session.leaveView = shown.leave;
  const heading = view.querySelector("h1");
  if (heading) heading.focus({ preventScroll: false });
}

window.addEventListener("hashchange", route);

// --- start -------------------------------------------------------------------------------------------------------

async function start() {
  const key = apiKey();
  if (!key) return showSignIn();
  try {
    session.vocabulary = await tryKey(key);
    enterApp();
  } catch (error) {
    forgetApiKey();
    showSignIn(error);
  }
}

start();
