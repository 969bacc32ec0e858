// Paint-to-image by hand: draw a rough painting of the scene with the training image's own colours (or
// upload one and touch it up), then POST /v1/models/{id}/paintings and show the images that come back.
//
// The palette is computed here from the model's input image: k-means (5 centres, as the API's `quantize`)
// on a small copy of it, so the swatches are the colours the model knows.

import { ApiError, getJSON, poll, postForm } from "./api.js";
import { clearError, clearErrors, el, fromTemplate, ref, saveAs, showError, showProblemInForm } from "./ui.js";
import { listEarlier, loadCanvasImage, pngOf, viewScope } from "./view.js";

const DISPLAY_SIDE = 480; // the canvas's longer side, in painting pixels (CSS scales it to fit)
const PALETTE_SIZE = 5;
const PALETTE_SAMPLE_SIDE = 64;

export function renderPaint(view, modelId, context) {
  const root = fromTemplate("tpl-paint");
  view.append(root);
  const base = `/v1/models/${modelId}`;
  const scope = viewScope(context);
  const { fail, track } = scope;
  let colour = "#808080";
  let last = null; // the previous brush point, while drawing

  ref(root, "model-id").textContent = modelId;
  ref(root, "back").href = `#/models/${modelId}`;
  const pageError = ref(root, "page-error");
  const fileError = ref(root, "file-error");
  const runError = ref(root, "run-error");
  const status = ref(root, "status");
  const canvas = ref(root, "canvas");
  const g = canvas.getContext("2d");
  const runButton = ref(root, "run");
  const runStatus = ref(root, "run-status");
  const brush = ref(root, "brush");

  async function load() {
    let model;
    try {
      model = await getJSON(base);
    } catch (error) {
      status.textContent = "";
      return fail(pageError, error, "The model could not be loaded.");
    }
    if (scope.left) return;
    const mode = model.params.mode || "generation";
    if (model.state !== "succeeded") {
      status.textContent = "";
      return showError(pageError, new Error(`the model is ${model.state}; paint once its training succeeded`), "Not trained yet.");
    }
    const paintModes = context.vocabulary.paint_modes;
    if (!paintModes.includes(mode)) {
      status.textContent = "";
      return showError(pageError, new Error(`a ${mode} model cannot turn a painting into an image; train a ${paintModes.join(" or ")} model on the photo`), "Not a painting model.");
    }
    const stages = paintableStages(model);
    if (stages < 2) {
      status.textContent = "";
      return showError(pageError, new Error("the model has only one stage, and a painting enters at stage 2 or later; train a model with more stages"), "No stage to paint into.");
    }
    const scale = DISPLAY_SIDE / Math.max(model.image.width, model.image.height);
    canvas.width = Math.round(model.image.width * scale);
    canvas.height = Math.round(model.image.height * scale);
    fillStages(stages);
    let photo;
    try {
      photo = await loadCanvasImage(scope, model.input_url);
    } catch (error) {
      status.textContent = "";
      return fail(pageError, error, "The training image could not be loaded.");
    }
    if (scope.left) return;
    const palette = kmeansPalette(photo, PALETTE_SIZE);
    showPalette(palette);
    g.fillStyle = palette[0]; // the lightest: a blank sheet in the photo's colours
    g.fillRect(0, 0, canvas.width, canvas.height);
    runButton.disabled = false;
    status.textContent = `A ${canvas.width} × ${canvas.height} canvas in the photo's aspect ratio. Paint the scene's layout with its colours, or upload a painting.`;
    loadEarlier();
  }

  function fillStages(stages) {
    const stage = ref(root, "stage");
    for (let k = 1; k < stages; k++) {
      const note = k === 1 ? ": redraws most, the photo's textures" : k === stages - 1 ? ": keeps most of the painting" : "";
      stage.append(new Option(`${k + 1} of ${stages}${note}`, String(k)));
    }
  }

  function showPalette(palette) {
    const list = ref(root, "palette");
    list.replaceChildren();
    palette.forEach((hex, index) => {
      const swatch = el("button", { type: "button", class: "swatch", "aria-label": `Colour ${index + 1} of the photo, ${hex}`, "aria-pressed": "false", dataset: { colour: hex } });
      swatch.style.backgroundColor = hex; // through the CSSOM: the CSP (style-src 'self') refuses a style attribute
      swatch.addEventListener("click", () => pick(hex));
      list.append(el("li", {}, swatch));
    });
    pick(palette[0]);
  }

  function pick(hex) {
    colour = hex;
    ref(root, "custom-colour").value = hex;
    for (const swatch of root.querySelectorAll(".swatch")) swatch.setAttribute("aria-pressed", String(swatch.dataset.colour === hex));
  }
  ref(root, "custom-colour").addEventListener("input", (event) => pick(event.target.value));

  ref(root, "fill").addEventListener("click", () => {
    g.fillStyle = colour;
    g.fillRect(0, 0, canvas.width, canvas.height);
  });

  // --- drawing -------------------------------------------------------------------------------------------------
  function point(event) {
    const box = canvas.getBoundingClientRect();
    return { x: ((event.clientX - box.left) / box.width) * canvas.width, y: ((event.clientY - box.top) / box.height) * canvas.height };
  }
  function stroke(from, to) {
    g.strokeStyle = colour;
    g.lineWidth = Number(brush.value);
    g.lineCap = "round";
    g.beginPath();
    g.moveTo(from.x, from.y);
    g.lineTo(to.x, to.y);
    g.stroke();
  }
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    stroke(last, last);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const next = point(event);
    stroke(last, next);
    last = next;
  });
  for (const end of ["pointerup", "pointercancel"]) canvas.addEventListener(end, () => (last = null));

  ref(root, "painting-file").addEventListener("change", async (event) => {
    clearError(fileError);
    const file = event.target.files[0];
    if (!file) return;
    let image;
    try {
      image = await createImageBitmap(file);
    } catch {
      return showError(fileError, new Error(`${file.name} is not an image this browser can read (PNG, JPEG or WebP)`), "Not an image.");
    }
    g.drawImage(image, 0, 0, canvas.width, canvas.height); // stretched to the photo's aspect ratio
    image.close();
    status.textContent = `${file.name} is on the canvas; paint over it or send it as it is.`;
  });

  // --- running -------------------------------------------------------------------------------------------------
  runButton.addEventListener("click", async () => {
    clearErrors(root.querySelector(".editor"));
    runButton.disabled = true; // before the first await: a double click sends one job
    runStatus.textContent = "Painting…";
    try {
      const form = new FormData();
      form.append("painting", await pngOf(canvas), "painting.png");
      form.append("stage", ref(root, "stage").value);
      form.append("quantize", ref(root, "quantize").checked ? "true" : "false");
      form.append("n", ref(root, "n").value);
      const seed = ref(root, "seed").value;
      if (seed !== "") form.append("seed", seed);
      const job = await postForm(`${base}/paintings`, form);
      const poller = poll(`/v1/jobs/${job.id}`, () => {});
      scope.pollers.push(poller);
      const done = await poller.done;
      if (!done || scope.left) return;
      if (done.state !== "succeeded") throw new ApiError({ title: `The painting ${done.state}.`, detail: done.error || "" });
      runStatus.textContent = "Done.";
      await showResults(done);
      loadEarlier();
    } catch (error) {
      runStatus.textContent = "";
      if (!scope.left) showProblemInForm(root.querySelector(".editor"), error, runError);
    } finally {
      runButton.disabled = false;
    }
  });

  async function showResults(job) {
    const list = ref(root, "results");
    list.replaceChildren();
    const stage = job.params.stage + 1;
    for (const [index, file] of job.result.files.entries()) {
      const draw = `stage ${stage}, draw ${index + 1}`;
      const img = el("img", { alt: `Image made from your painting, ${draw}` });
      const url = await track(file.url);
      img.src = url;
      const save = el("button", { type: "button", class: "secondary", "aria-label": `Download ${file.name} (${draw})` }, "Download");
      save.addEventListener("click", () => saveAs(url, `${job.id}-${file.name}`));
      list.append(el("li", { class: "tile" }, el("figure", {}, img, el("figcaption", {}, `stage ${stage}${job.params.quantize ? ", quantized" : ""} `, save))));
    }
    const section = ref(root, "result-section");
    section.hidden = false;
    section.scrollIntoView({ block: "start" });
  }

  function loadEarlier() {
    return listEarlier(scope, {
      modelId,
      kind: "paint",
      list: ref(root, "earlier"),
      empty: ref(root, "earlier-empty"),
      alt: (job) => `Image made from your painting, stage ${job.params.stage + 1}, draw 1`, // the job's main image
      caption: (job) => `stage ${job.params.stage + 1}`,
      errorBox: pageError,
      lead: "Earlier paintings could not be listed.",
    });
  }

  load();

  return { leave: scope.leave };
}

// The stages a painting can enter (1 .. count - 1): those the model's checkpoint holds, fewer than planned
// where its training was canceled with keep_trained_stages.
export function paintableStages(model) {
  return model.stages_trained || model.train_config?.train_stages || 2;
}

// k-means on the colours of a small copy of the image: `k` hex colours, darkest last. Seeded by farthest-point
// picks from the mean colour, so the same photo always gives the same palette.
export function kmeansPalette(image, k) {
  const scale = Math.min(1, PALETTE_SAMPLE_SIDE / Math.max(image.naturalWidth || image.width, image.naturalHeight || image.height));
  const w = Math.max(1, Math.round((image.naturalWidth || image.width) * scale));
  const h = Math.max(1, Math.round((image.naturalHeight || image.height) * scale));
  const small = document.createElement("canvas");
  small.width = w;
  small.height = h;
  const c = small.getContext("2d", { willReadFrequently: true });
  c.drawImage(image, 0, 0, w, h);
  const data = c.getImageData(0, 0, w, h).data;
  const pixels = [];
  for (let i = 0; i < data.length; i += 4) pixels.push([data[i], data[i + 1], data[i + 2]]);
  const distance = (a, b) => (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2;
  const mean = [0, 1, 2].map((ch) => pixels.reduce((sum, p) => sum + p[ch], 0) / pixels.length);
  const centres = [];
  let next = mean;
  while (centres.length < k) {
    let far = pixels[0];
    let best = -1;
    for (const p of pixels) {
      const d = centres.length ? Math.min(...centres.map((c2) => distance(p, c2))) : distance(p, next);
      if (d > best) [best, far] = [d, p];
    }
    centres.push([...far]);
  }
  for (let iteration = 0; iteration < 20; iteration++) {
    const sums = centres.map(() => [0, 0, 0, 0]);
    for (const p of pixels) {
      let owner = 0;
      for (let j = 1; j < centres.length; j++) if (distance(p, centres[j]) < distance(p, centres[owner])) owner = j;
      sums[owner][0] += p[0];
      sums[owner][1] += p[1];
      sums[owner][2] += p[2];
      sums[owner][3] += 1;
    }
    sums.forEach((s, j) => {
      if (s[3]) centres[j] = [s[0] / s[3], s[1] / s[3], s[2] / s[3]];
    });
  }
  centres.sort((a, b) => b[0] + b[1] + b[2] - (a[0] + a[1] + a[2]));
  return centres.map((c2) => "#" + c2.map((v) => Math.round(v).toString(16).padStart(2, "0")).join(""));
}
