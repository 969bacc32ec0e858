// The REST API as the page uses it: the same public routes any client calls, with the API key in an
// Authorization header. The key lives in sessionStorage (this tab only) and never goes into a URL.

const KEY_STORAGE = "consingan.apiKey";

export class ApiError extends Error {
  // problem: the RFC 9457 body ({type, title, status, detail, errors?}) or one made up for a network failure;
  // retryAfterS: the response's Retry-After in seconds (a 429, or a 503 while a dependency is down), or null
  constructor(problem, retryAfterS = null) {
    super(problem.detail || problem.title || "request failed");
    this.problem = problem;
    this.status = problem.status || 0;
    this.retryAfterS = retryAfterS;
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
  if (!response.ok) throw new ApiError(await problemFrom(response), retryAfterOf(response));
  return response;
}

function retryAfterOf(response) {
  const seconds = Number(response.headers.get("Retry-After"));
  return response.headers.has("Retry-After") && Number.isFinite(seconds) && seconds >= 0 ? seconds : null;
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
// final read, or with null once stop() was called. A 503 (the database or storage is down for a moment) is
// waited out as its Retry-After says, and polling goes on; any other error rejects `done`.
const UNAVAILABLE_WAIT_S = 5;

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
        if (stopped) return;
        if (error instanceof ApiError && error.status === 503) {
          timer = setTimeout(tick, Math.max(intervalMs, 1000 * (error.retryAfterS ?? UNAVAILABLE_WAIT_S)));
          return;
        }
        reject(error);
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

// Follows a job's Server-Sent Events (GET /v1/jobs/{id}/events with Accept: text/event-stream) until its
// terminal event. EventSource cannot send the Authorization header, so this reads a fetch() stream. A dropped
// stream is resumed with Last-Event-ID (nothing missed, nothing twice); a 503 is waited out as its
// Retry-After says. onMessage sees {id, event, data}: the log's events (with an id) and `job` snapshots.
// `done` resolves "ended" after the terminal event, "unavailable" when streaming does not work here (the
// caller polls instead), or null once stop() was called; a 401/404 rejects it with the ApiError.
const STREAM_FAILURES_BEFORE_POLLING = 3;

export function followEvents(path, onMessage) {
  const controller = new AbortController();
  let stopped = false;
  let finish = null;
  const done = new Promise((resolve, reject) => {
    finish = resolve;
    let lastEventId = null;
    let failures = 0;
    let retryMs = 2000;
    const connect = async () => {
      if (stopped) return;
      let terminal = false;
      try {
        const headers = { Accept: "text/event-stream" };
        if (lastEventId !== null) headers["Last-Event-ID"] = String(lastEventId);
        const response = await fetch(path, { headers: headersFor(path, headers), signal: controller.signal });
        if (!response.ok) {
          const error = new ApiError(await problemFrom(response), retryAfterOf(response));
          if (error.status === 503) return setTimeout(connect, 1000 * (error.retryAfterS ?? UNAVAILABLE_WAIT_S));
          return reject(error);
        }
        if (!response.body || !(response.headers.get("content-type") || "").startsWith("text/event-stream")) {
          return resolve("unavailable");
        }
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        let message = {};
        for (;;) {
          const { value, done: ended } = await reader.read();
          if (ended) break;
          buffer += value;
          const lines = buffer.split(/\r\n|\r|\n/);
          buffer = lines.pop();
          for (const line of lines) {
            if (line === "") {
              if (message.data !== undefined) {
                if (message.id !== undefined) lastEventId = message.id;
                failures = 0;
                if (message.id !== undefined && FINAL_STATES.has(message.event)) terminal = true;
                onMessage(message);
              }
              message = {};
            } else if (!line.startsWith(":")) {
              const colon = line.indexOf(":");
              const field = colon < 0 ? line : line.slice(0, colon);
              const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
              if (field === "data") message.data = message.data === undefined ? value : `${message.data}\n${value}`;
              else if (field === "id" || field === "event") message[field] = value;
              else if (field === "retry" && Number.isFinite(Number(value))) retryMs = Number(value);
            }
          }
        }
      } catch (error) {
        if (stopped) return;
        if (error instanceof ApiError) return reject(error);
      }
      if (stopped) return;
      if (terminal) return resolve("ended");
      failures += 1;
      if (failures >= STREAM_FAILURES_BEFORE_POLLING) return resolve("unavailable");
      setTimeout(connect, retryMs);
    };
    connect();
  });
  return {
    done,
    stop() {
      stopped = true;
      controller.abort();
      finish(null);
    },
  };
}
