// Harmonization by hand: an object placed on the painting (drag, resize), its mask painted or erased with a
// brush, then the naive image and the mask composed here at the painting's own size and sent to
// POST /v1/models/{id}/harmonizations. The result is shown beside the naive paste and in a before/after view.
//
// The mask lives in the object's own pixels (so it moves and scales with the object). It starts as the
// object's alpha (a PNG with transparency) or as the whole rectangle (an opaque image: erase its background).
// What is pasted is the object where both its alpha and the mask are set; what is harmonized is the mask.

import { ApiError, getJSON, poll, postForm } from "./api.js";
import { clearError, clearErrors, fromTemplate, ref, saveAs, showError, showProblemInForm } from "./ui.js";
import { listEarlier, loadCanvasImage, pngOf, viewScope } from "./view.js";

const DISPLAY_SIDE = 720; // the editor canvas's longer side, in canvas pixels (CSS scales it to fit)
const MASK_TINT = "rgba(255, 0, 170, 0.3)";

export function renderHarmonize(view, modelId, context) {
  const root = fromTemplate("tpl-harmonize");
  view.append(root);
  const vocabulary = context.vocabulary;
  const base = `/v1/models/${modelId}`;
  const scope = viewScope(context);
  const { fail, track } = scope;

  ref(root, "model-id").textContent = modelId;
  ref(root, "back").href = `#/models/${modelId}`;
  const pageError = ref(root, "page-error");
  const objectError = ref(root, "object-error");
  const runError = ref(root, "run-error");
  const status = ref(root, "status");
  const canvas = ref(root, "canvas");
  const g = canvas.getContext("2d");
  const scaleSlider = ref(root, "scale");
  const brushSlider = ref(root, "brush");
  const showMask = ref(root, "show-mask");
  const runButton = ref(root, "run");
  const runStatus = ref(root, "run-status");

  let painting = null; // HTMLImageElement at the model's uploaded size
  let W = 0;
  let H = 0;
  let ds = 1; // canvas pixels per painting pixel
  let obj = null; // {image, w, h, mask, cut, tint, dirty, x, y, scale}
  let hover = null; // pointer position in painting pixels, for the brush outline
  let gesture = null; // {kind: "move", dx, dy} | {kind: "brush", last}

  function tool() {
    return root.querySelector('input[name="tool"]:checked').value;
  }

  // --- the painting ------------------------------------------------------------------------------------------
  async function load() {
    let model;
    try {
      model = await getJSON(base);
    } catch (error) {
      status.textContent = "";
      return fail(pageError, error, "The model could not be loaded.");
    }
    if (scope.left) return;
    if (model.state !== "succeeded") {
      status.textContent = "";
      return showError(pageError, new Error(`the model is ${model.state}; harmonize once its training succeeded`), "Not trained yet.");
    }
    W = model.image.width;
    H = model.image.height;
    fillOptions(model);
    try {
      painting = await loadCanvasImage(scope, model.input_url);
    } catch (error) {
      status.textContent = "";
      return fail(pageError, error, "The painting could not be loaded.");
    }
    if (scope.left) return;
    ds = DISPLAY_SIDE / Math.max(W, H);
    canvas.width = Math.round(W * ds);
    canvas.height = Math.round(H * ds);
    brushSlider.max = Math.max(4, Math.round(Math.max(W, H) / 4));
    brushSlider.value = Math.max(1, Math.round(Math.max(W, H) / 16));
    describeBrush();
    status.textContent = `The painting, ${W} × ${H} px. Pick an object image to paste into it.`;
    render();
    loadEarlier();
  }

  function fillOptions(model) {
    // the stages the model's checkpoint holds: fewer than planned where its training was canceled with
    // keep_trained_stages (the service refuses the others)
    const stages = model.stages_trained || model.train_config?.train_stages || 1;
    const stage = ref(root, "stage");
    for (let k = 0; k < stages; k++) {
      const note = k === 0 ? ": coarsest, harmonizes most" : k === stages - 1 ? ": finest, keeps most detail" : "";
      stage.append(new Option(`${k + 1} of ${stages}${note}`, String(k)));
    }
    const composite = ref(root, "composite");
    for (const name of vocabulary.composites) composite.append(new Option(name, name));
    composite.value = vocabulary.default_composite;
  }

  // --- the object ----------------------------------------------------------------------------------------------
  ref(root, "object-file").addEventListener("change", async (event) => {
    clearError(objectError);
    const file = event.target.files[0];
    if (!file) return;
    if (!painting) return showError(objectError, new Error("wait for the painting to load"), "Not ready.");
    let image;
    try {
      image = await createImageBitmap(file);
    } catch {
      return showError(objectError, new Error(`${file.name} is not an image this browser can read (PNG, JPEG or WebP)`), "Not an image.");
    }
    if (obj) obj.image.close();
    const mask = canvasOf(image.width, image.height);
    const m = mask.getContext("2d");
    m.drawImage(image, 0, 0);
    const opaque = isOpaque(m, image.width, image.height);
    m.globalCompositeOperation = "source-in"; // white wherever the object has alpha
    m.fillStyle = "#fff";
    m.fillRect(0, 0, image.width, image.height);
    obj = { image, w: image.width, h: image.height, mask, cut: canvasOf(image.width, image.height), tint: canvasOf(image.width, image.height), dirty: true, x: W / 2, y: H / 2, scale: 1 };
    scaleSlider.value = 50;
    applyScale();
    runButton.disabled = false;
    status.textContent = opaque
      ? `${file.name} has no transparency, so the whole rectangle is pasted: erase its background with Erase mask. Drag it into place.`
      : `${file.name} placed in the middle; its transparency is the mask. Drag it into place.`;
    render();
  });

  // The slider is the object's longer side as a percentage of the painting's shorter side.
  function applyScale() {
    const percent = Number(scaleSlider.value);
    ref(root, "scale-out").textContent = `${percent}%`;
    scaleSlider.setAttribute("aria-valuetext", `${percent} percent of the painting's shorter side`);
    if (!obj) return;
    obj.scale = ((percent / 100) * Math.min(W, H)) / Math.max(obj.w, obj.h);
    render();
  }
  scaleSlider.addEventListener("input", applyScale);

  function describeBrush() {
    ref(root, "brush-out").textContent = `${brushSlider.value} px`;
    brushSlider.setAttribute("aria-valuetext", `${brushSlider.value} pixels`);
  }
  brushSlider.addEventListener("input", () => {
    describeBrush();
    render();
  });
  showMask.addEventListener("change", render);
  for (const radio of root.querySelectorAll('input[name="tool"]')) {
    radio.addEventListener("change", () => {
      canvas.dataset.tool = tool();
      render();
    });
  }
  canvas.dataset.tool = "move";

  // The object's box in painting pixels.
  function box() {
    const w = obj.w * obj.scale;
    const h = obj.h * obj.scale;
    return { left: obj.x - w / 2, top: obj.y - h / 2, w, h };
  }

  function refreshLayers() {
    if (!obj.dirty) return;
    const c = obj.cut.getContext("2d");
    c.globalCompositeOperation = "copy";
    c.drawImage(obj.image, 0, 0);
    c.globalCompositeOperation = "destination-in"; // the object where the mask is set
    c.drawImage(obj.mask, 0, 0);
    const t = obj.tint.getContext("2d");
    t.globalCompositeOperation = "copy";
    t.drawImage(obj.mask, 0, 0);
    t.globalCompositeOperation = "source-in";
    t.fillStyle = MASK_TINT;
    t.fillRect(0, 0, obj.w, obj.h);
    obj.dirty = false;
  }

  // --- drawing the editor ------------------------------------------------------------------------------------
  function render() {
    if (!painting) return;
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.clearRect(0, 0, canvas.width, canvas.height);
    g.setTransform(ds, 0, 0, ds, 0, 0); // from here on, painting pixels
    g.imageSmoothingEnabled = true;
    g.drawImage(painting, 0, 0, W, H);
    if (!obj) return;
    refreshLayers();
    const b = box();
    g.drawImage(obj.cut, b.left, b.top, b.w, b.h);
    if (showMask.checked || tool() !== "move") g.drawImage(obj.tint, b.left, b.top, b.w, b.h); // the brushes show it
    g.lineWidth = 1.5 / ds;
    g.setLineDash([6 / ds, 4 / ds]);
    g.strokeStyle = "rgba(255, 255, 255, 0.95)";
    g.strokeRect(b.left, b.top, b.w, b.h);
    g.lineDashOffset = 5 / ds;
    g.strokeStyle = "rgba(0, 0, 0, 0.9)";
    g.strokeRect(b.left, b.top, b.w, b.h);
    g.setLineDash([]);
    g.lineDashOffset = 0;
    if (hover && tool() !== "move") {
      g.beginPath();
      g.arc(hover.x, hover.y, Number(brushSlider.value) / 2, 0, 2 * Math.PI);
      g.strokeStyle = tool() === "erase" ? "rgba(255, 255, 255, 0.95)" : "rgba(255, 0, 170, 0.95)";
      g.stroke();
    }
  }

  // --- pointer and keyboard ----------------------------------------------------------------------------------
  function toPainting(event) {
    const rect = canvas.getBoundingClientRect();
    return { x: ((event.clientX - rect.left) * W) / rect.width, y: ((event.clientY - rect.top) * H) / rect.height };
  }

  function brush(from, to) {
    const b = box();
    const local = (p) => ({ x: (p.x - b.left) / obj.scale, y: (p.y - b.top) / obj.scale });
    const a = local(from);
    const z = local(to);
    const m = obj.mask.getContext("2d");
    m.globalCompositeOperation = tool() === "erase" ? "destination-out" : "source-over";
    m.strokeStyle = "#fff";
    m.fillStyle = "#fff";
    m.lineWidth = Number(brushSlider.value) / obj.scale;
    m.lineCap = "round";
    m.beginPath();
    m.moveTo(a.x, a.y);
    m.lineTo(z.x + 0.01, z.y); // a zero-length round line still draws a dot
    m.stroke();
    obj.dirty = true;
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (!obj) return;
    event.preventDefault();
    canvas.focus();
    canvas.setPointerCapture(event.pointerId);
    const p = toPainting(event);
    if (tool() === "move") {
      gesture = { kind: "move", dx: p.x - obj.x, dy: p.y - obj.y };
    } else {
      gesture = { kind: "brush", last: p };
      brush(p, p);
    }
    render();
  });

  canvas.addEventListener("pointermove", (event) => {
    const p = toPainting(event);
    hover = p;
    if (gesture?.kind === "move") {
      obj.x = p.x - gesture.dx;
      obj.y = p.y - gesture.dy;
    } else if (gesture?.kind === "brush") {
      brush(gesture.last, p);
      gesture.last = p;
    }
    render();
  });

  for (const type of ["pointerup", "pointercancel"]) {
    canvas.addEventListener(type, () => {
      if (gesture) describePlacement();
      gesture = null;
    });
  }
  canvas.addEventListener("pointerleave", () => {
    hover = null;
    render();
  });

  canvas.addEventListener("keydown", (event) => {
    if (!obj) return;
    const step = event.shiftKey ? 10 : 1;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[event.key]) {
      obj.x += moves[event.key][0];
      obj.y += moves[event.key][1];
    } else if (event.key === "+" || event.key === "=") {
      scaleSlider.value = Math.min(Number(scaleSlider.max), Number(scaleSlider.value) + 5);
      applyScale();
    } else if (event.key === "-") {
      scaleSlider.value = Math.max(Number(scaleSlider.min), Number(scaleSlider.value) - 5);
      applyScale();
    } else {
      return;
    }
    event.preventDefault();
    render();
    describePlacement();
  });

  function describePlacement() {
    if (!obj) return;
    const b = box();
    status.textContent = `Object at ${Math.round(b.left)}, ${Math.round(b.top)}, ${Math.round(b.w)} × ${Math.round(b.h)} px on the ${W} × ${H} painting.`;
  }

  // --- composing and running ----------------------------------------------------------------------------------
  // The naive image and the mask at the painting's own size: what the API expects.
  async function compose() {
    refreshLayers();
    const b = box();
    const naive = canvasOf(W, H);
    const n = naive.getContext("2d");
    n.drawImage(painting, 0, 0, W, H);
    n.drawImage(obj.cut, b.left, b.top, b.w, b.h);
    const mask = canvasOf(W, H);
    const m = mask.getContext("2d");
    m.fillStyle = "#000";
    m.fillRect(0, 0, W, H);
    m.drawImage(obj.mask, b.left, b.top, b.w, b.h);
    const pixels = m.getImageData(0, 0, W, H);
    let marked = 0;
    for (let i = 0; i < pixels.data.length; i += 4) {
      const on = pixels.data[i] >= 128; // the API thresholds at half grey too
      pixels.data[i] = pixels.data[i + 1] = pixels.data[i + 2] = on ? 255 : 0;
      pixels.data[i + 3] = 255;
      marked += on;
    }
    m.putImageData(pixels, 0, 0);
    return { naive: await pngOf(naive), mask: await pngOf(mask), marked };
  }

  runButton.addEventListener("click", async () => {
    clearErrors(root.querySelector(".editor"));
    if (!obj) return showError(objectError, new Error("pick an object image first"), "Nothing to harmonize.");
    runButton.disabled = true; // before the first await: a double click sends one job
    runStatus.textContent = "Harmonizing…";
    try {
      const { naive, mask, marked } = await compose();
      if (!marked) {
        runStatus.textContent = "";
        return showError(runError, new Error("the object is outside the painting or its mask is empty; drag it onto the painting or paint its mask"), "Nothing to harmonize.");
      }
      const form = new FormData();
      form.append("naive", naive, "naive.png");
      form.append("mask", mask, "mask.png");
      form.append("stage", ref(root, "stage").value);
      form.append("composite", ref(root, "composite").value);
      form.append("fine_tune", ref(root, "fine-tune").checked ? "true" : "false");
      const seed = ref(root, "seed").value;
      if (seed !== "") form.append("seed", seed);
      const job = await postForm(`${base}/harmonizations`, form);
      const poller = poll(`/v1/jobs/${job.id}`, (current) => {
        if (current.state === "running" && current.progress) runStatus.textContent = `Harmonizing… ${current.progress.percent.toFixed(0)}%`;
      });
      scope.pollers.push(poller);
      const done = await poller.done;
      if (!done || scope.left) return;
      if (done.state !== "succeeded") throw new ApiError({ title: `The harmonization ${done.state}.`, detail: done.error || "" });
      runStatus.textContent = "Done.";
      const naiveURL = URL.createObjectURL(naive);
      scope.urls.push(naiveURL);
      await showResult(naiveURL, await track(done.result.url), done);
      loadEarlier();
    } catch (error) {
      runStatus.textContent = "";
      if (!scope.left) showProblemInForm(root.querySelector(".editor"), error, runError);
    } finally {
      runButton.disabled = false;
    }
  });

  // --- the result ---------------------------------------------------------------------------------------------
  const compareSlider = ref(root, "compare-slider");
  const compareAfter = ref(root, "compare-after");
  function applyCompare() {
    const percent = Number(compareSlider.value);
    compareAfter.style.clipPath = `inset(0 ${100 - percent}% 0 0)`;
    ref(root, "compare-line").style.left = `${percent}%`;
    compareSlider.setAttribute("aria-valuetext", `${percent}% harmonized, ${100 - percent}% naive`);
  }
  compareSlider.addEventListener("input", applyCompare);
  applyCompare();

  async function showResult(naiveURL, resultURL, job) {
    ref(root, "naive-img").src = naiveURL;
    ref(root, "result-img").src = resultURL;
    ref(root, "compare-before").src = naiveURL;
    compareAfter.src = resultURL;
    const section = ref(root, "result-section");
    section.hidden = false;
    const download = ref(root, "download-result");
    download.onclick = () => saveAs(resultURL, `${job.id}-result.png`);
    await Promise.all([ref(root, "result-img").decode(), ref(root, "naive-img").decode()]).catch(() => {});
    section.scrollIntoView({ block: "start" });
  }

  function loadEarlier() {
    return listEarlier(scope, {
      modelId,
      kind: "harmonize",
      list: ref(root, "earlier"),
      empty: ref(root, "earlier-empty"),
      alt: (job) => `Harmonization ${job.id}`,
      caption: (job) => `stage ${job.params.stage + 1}, ${job.params.composite}${job.params.fine_tune ? ", fine-tuned" : ""}`,
      errorBox: pageError,
      lead: "Earlier harmonizations could not be listed.",
    });
  }

  load();

  return {
    leave() {
      scope.leave();
      if (obj) obj.image.close();
    },
  };
}

function canvasOf(width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(width));
  canvas.height = Math.max(1, Math.round(height));
  return canvas;
}

function isOpaque(context, width, height) {
  const data = context.getImageData(0, 0, width, height).data;
  for (let i = 3; i < data.length; i += 4) if (data[i] < 255) return false;
  return true;
}
