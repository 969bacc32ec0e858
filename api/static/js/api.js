// The REST API as the page uses it: the same public routes any client calls, with the API key in an
// Authorization header. The key lives in sessionStorage (this tab only) and never goes into a URL.

const KEY_STORAGE = "consingan.apiKey";

export class ApiError extends Error {
  // problem: the RFC 9457 body ({type, title, status, detail, errors?}) or one made up for a network failure
  constructor(problem) {
    super(problem.detail || problem.title || "request failed");
    this.problem = problem;
    this.status = problem.status || 0;
  }

  get slug() {
    return (this.problem.type || "").split("/").pop();
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function setApiKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function forgetApiKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

export function isSameOrigin(url) {
  return new URL(url, location.href).origin === location.origin;
}

// Only this API gets the key: a presigned storage URL (S3, MinIO) is fetched without it.
function headersFor(url, extra = {}, key = apiKey()) {
  const headers = { ...extra };
  if (key && isSameOrigin(url)) headers.Authorization = `Bearer ${key}`;
  return headers;
}

async function problemFrom(response) {
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) {
    try {
      const body = await response.json();
      if (body && typeof body === "object") return { status: response.status, ...body };
    } catch {
      // fall through: a body that does not parse
    }
  }
  return {
    status: response.status,
    title: response.statusText || `HTTP ${response.status}`,
    detail: `the service answered ${response.status}`,
  };
}

async function send(url, { method = "GET", body, headers = {}, key } = {}) {
  let response;
  try {
    response = await fetch(url, { method, body, headers: headersFor(url, headers, key) });
  } catch (error) {
    throw new ApiError({ status: 0, title: "The service cannot be reached", detail: String(error.message || error) });
  }
  if (!response.ok) throw new ApiError(await problemFrom(response));
  return response;
}

export async function getJSON(path, options = {}) {
  const response = await send(path, options);
  return response.json();
}

export async function postJSON(path, data) {
  const response = await send(path, {
    method: "POST",
    body: JSON.stringify(data),
    headers: { "Content-Type": "application/json" },
  });
  return response.json();
}

export async function postForm(path, form) {
  const response = await send(path, { method: "POST", body: form });
  return response.json();
}

export async function remove(path) {
  await send(path, { method: "DELETE" });
}

// A downloadable URL the page can show or save: an object URL of the bytes for this API's routes (they
// need the key), the presigned URL itself otherwise.
export async function displayURL(url) {
  if (!isSameOrigin(url)) return url;
  const response = await send(url);
  return URL.createObjectURL(await response.blob());
}

export async function blobOf(url) {
  const response = await send(url);
  return response.blob();
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  return search.toString();
}

export const FINAL_STATES = new Set(["succeeded", "failed", "canceled"]);

// Polls a job (or model) until it reaches a final state; onUpdate sees every read. `done` resolves with the
// final read, or with null once stop() was called.
export function poll(path, onUpdate, intervalMs = 1000) {
  let stopped = false;
  let timer = null;
  let finish = null;
  const done = new Promise((resolve, reject) => {
    finish = resolve;
    const tick = async () => {
      if (stopped) return;
      try {
        const current = await getJSON(path);
        if (stopped) return;
        onUpdate(current);
        if (FINAL_STATES.has(current.state)) return resolve(current);
      } catch (error) {
        if (!stopped) reject(error);
        return;
      }
      timer = setTimeout(tick, intervalMs);
    };
    tick();
  });
  return {
    done,
    stop() {
      stopped = true;
      clearTimeout(timer);
      finish(null);
    },
  };
}
