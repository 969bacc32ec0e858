// What the views (model.js, harmonize.js, paint.js) share: the object URLs and pollers to free when the view
// is left, problems shown only while the view is shown (a 401 goes back to the sign-in), images loaded for a
// canvas, a canvas as a PNG, and the list of a model's earlier results of one kind.

import { ApiError, displayURL, getJSON, isSameOrigin, query } from "./api.js";
import { el, shortId, showError } from "./ui.js";

// A view's scope: `left` turns true when the view is left; `leave()` stops its pollers and frees its URLs.
export function viewScope(context) {
  const scope = {
    left: false,
    urls: [], // object URLs to free when the view is left
    pollers: [],

    // A URL to show: an object URL of a same-origin file (fetched with the key, freed on leave), else the URL.
    async track(url) {
      const shown = await displayURL(url);
      if (shown.startsWith("blob:")) scope.urls.push(shown);
      return shown;
    },

    fail(box, error, lead) {
      if (scope.left) return;
      if (error instanceof ApiError && error.status === 401) return context.onUnauthorized(error);
      showError(box, error, lead);
    },

    leave() {
      scope.left = true;
      for (const poller of scope.pollers) poller.stop();
      for (const url of scope.urls) URL.revokeObjectURL(url);
    },
  };
  return scope;
}

// An image to draw on a canvas, decoded; the canvas stays readable (exportable) whatever the URL's origin.
export async function loadCanvasImage(scope, url) {
  const image = new Image();
  if (isSameOrigin(url)) image.src = await scope.track(url);
  else {
    image.crossOrigin = "anonymous"; // a presigned storage URL: the canvas must stay readable
    image.src = url;
  }
  await image.decode();
  return image;
}

export function pngOf(canvas) {
  return new Promise((resolve, reject) => canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("the browser could not encode the image"))), "image/png"));
}

// The model's last succeeded jobs of `kind` as tiles in `list`, each its main image (`alt(job)`) over
// "short id · caption(job)"; `empty` shows when there are none, a problem goes to `errorBox` after `lead`.
export async function listEarlier(scope, { modelId, kind, list, empty, alt, caption, errorBox, lead }) {
  try {
    const page = await getJSON(`/v1/jobs?${query({ model_id: modelId, kind, state: "succeeded", limit: 12 })}`);
    if (scope.left) return;
    list.replaceChildren();
    for (const job of page.data) {
      const img = el("img", { alt: alt(job) });
      scope.track(job.result.url).then((url) => (img.src = url)).catch(() => img.remove());
      list.append(el("li", { class: "tile" }, el("figure", {}, img, el("figcaption", {}, `${shortId(job.id)} · ${caption(job)}`))));
    }
    empty.hidden = page.data.length > 0;
  } catch (error) {
    scope.fail(errorBox, error, lead);
  }
}
