// New model: pick or drop an image, see it at the size the model sees (GET /v1/pyramid answers with the
// engine's own rule) and how long it would train here (GET /v1/estimate), choose preset and mode, start
// (POST /v1/models).

import { ApiError, getJSON, postForm, query } from "./api.js";
import { clearError, clearErrors, duration, fromTemplate, ref, sentence, showError, showProblemInForm } from "./ui.js";

const NUMBER_FIELDS = ["train_stages", "iters_per_stage", "max_size", "min_size", "seed"];
// Problems about the upload itself go next to the drop zone.
const IMAGE_PROBLEMS = new Set(["invalid-image", "unsupported-media-type", "payload-too-large"]);

export function renderNew(view, context) {
  const root = fromTemplate("tpl-new");
  view.append(root);
  const vocabulary = context.vocabulary;
  const form = ref(root, "form");
  const fileInput = root.querySelector("#train-image");
  const drop = ref(root, "drop");
  const fileName = ref(root, "file-name");
  const imageError = root.querySelector('[data-error-for="image"]');
  const formError = ref(root, "form-error");
  const seen = ref(root, "seen");
  const seenCanvas = ref(root, "seen-canvas");
  const seenCaption = ref(root, "seen-caption");
  const preset = ref(root, "preset");
  const mode = ref(root, "mode");
  const start = ref(root, "start");
  const fields = Object.fromEntries(NUMBER_FIELDS.map((name) => [name, ref(root, name)]));

  let file = null;
  let bitmap = null; // the decoded image, or null when this browser cannot decode the file
  let previewRequest = 0;
  let left = false;

  // --- the vocabulary fills the choices and the bounds --------------------------------------------------
  for (const p of vocabulary.presets) preset.append(new Option(p.name, p.name));
  for (const m of vocabulary.modes) mode.append(new Option(m.name, m.name));
  preset.value = vocabulary.presets.some((p) => p.name === "quick") ? "quick" : vocabulary.presets[0].name;
  const limits = vocabulary.limits;
  setBounds(fields.train_stages, limits.train_stages);
  setBounds(fields.iters_per_stage, limits.iters_per_stage);
  setBounds(fields.max_size, limits.image_size);
  setBounds(fields.min_size, limits.image_size);
  fields.seed.max = limits.seed_max;
  const srFactor = ref(root, "sr_factor");
  srFactor.min = vocabulary.limits.sr_factor.min;
  srFactor.max = vocabulary.limits.sr_factor.max;

  function describeChoices() {
    const chosen = vocabulary.presets.find((p) => p.name === preset.value);
    const config = chosen.modes[mode.value];
    ref(root, "preset-help").textContent = `${sentence(chosen.description)} For ${mode.value}: ${config.train_stages} stages × ${config.iters_per_stage} iterations, up to ${config.max_size} px.`;
    ref(root, "mode-help").textContent = sentence(vocabulary.modes.find((m) => m.name === mode.value).description);
    for (const name of ["train_stages", "iters_per_stage", "max_size", "min_size"]) fields[name].placeholder = String(config[name]);
    // a head is trained on models whose samples show the scene (not harmonization or editing)
    const srField = ref(root, "sr-field");
    srField.hidden = !vocabulary.sr_modes.includes(mode.value);
    if (srField.hidden) srFactor.value = "";
    describeHead();
  }

  // What a head costs, before Start: its iterations beside a stage's (the head trains at the full size,
  // after the model is ready, as a job of its own).
  function describeHead() {
    const chosen = vocabulary.presets.find((p) => p.name === preset.value);
    const config = chosen.modes[mode.value];
    const stages = fields.train_stages.value || config.train_stages;
    const perStage = fields.iters_per_stage.value || config.iters_per_stage;
    ref(root, "sr-help").textContent =
      `Set it (e.g. 4) to also train a head that enlarges the model's images. It costs +${chosen.sr_head_iters} iterations at the full size ` +
      `(each of this training's ${stages} stages is ${perStage}), trained after the model is ready, as a job of its own: the model is usable meanwhile.`;
  }
  describeChoices();
  for (const name of ["train_stages", "iters_per_stage"]) fields[name].addEventListener("input", describeHead);

  // --- choosing the image ---------------------------------------------------------------------------------
  fileInput.addEventListener("change", () => choose(fileInput.files[0]));
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "drop"]) drop.addEventListener(type, () => drop.classList.remove("dragging"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    const dropped = event.dataTransfer.files[0];
    if (dropped) choose(dropped);
  });

  async function choose(chosen) {
    clearError(imageError);
    clearError(formError);
    file = chosen || null;
    bitmap = null;
    seen.hidden = true;
    if (!file) {
      fileName.textContent = "No image chosen.";
      return;
    }
    fileName.textContent = `${file.name} (${Math.round(file.size / 1024)} KB)`;
    try {
      bitmap = await createImageBitmap(file);
    } catch {
      // The service decides what is an image; it answers when the training starts.
      fileName.textContent = `${file.name}: this browser cannot show it; the service checks it when you start.`;
      return;
    }
    updatePreview();
  }

  // --- what the model sees ----------------------------------------------------------------------------------
  async function updatePreview() {
    if (!bitmap || left) return;
    const request = ++previewRequest;
    const params = { width: bitmap.width, height: bitmap.height, preset: preset.value, mode: mode.value };
    for (const name of ["train_stages", "max_size", "min_size"]) {
      if (fields[name].value !== "") params[name] = fields[name].value;
    }
    try {
      const pyramid = await getJSON(`/v1/pyramid?${query(params)}`);
      if (request !== previewRequest || left) return;
      clearError(imageError);
      drawSeen(pyramid);
    } catch (error) {
      if (request !== previewRequest || left) return;
      seen.hidden = true;
      estimate.hidden = true;
      if (error instanceof ApiError && error.status === 401) return context.onUnauthorized(error);
      return showProblemInForm(form, error, imageError);
    }
    // The estimate on its own: one it cannot give (a head this mode gets none of, the service away) hides
    // the estimate only, never the preview that just loaded.
    if (fields.iters_per_stage.value !== "") params.iters_per_stage = fields.iters_per_stage.value;
    if (srFactor.value !== "") params.sr_factor = srFactor.value;
    try {
      const expected = await getJSON(`/v1/estimate?${query(params)}`);
      if (request !== previewRequest || left) return;
      clearError(form.querySelector('[data-error-for="sr_factor"]'));
      showEstimate(expected);
    } catch (error) {
      if (request !== previewRequest || left) return;
      estimate.hidden = true;
      if (error instanceof ApiError && error.status === 401) return context.onUnauthorized(error);
      if (error instanceof ApiError && error.status === 422) showProblemInForm(form, error, imageError);
    }
  }

  function drawSeen(pyramid) {
    const { width, height } = pyramid.top;
    seenCanvas.width = width;
    seenCanvas.height = height;
    const g = seenCanvas.getContext("2d");
    g.imageSmoothingQuality = "high";
    g.drawImage(bitmap, 0, 0, width, height);
    const stages = pyramid.stages.map((s) => `${s.width}×${s.height}`).join(" → ");
    seenCaption.textContent = `The model sees ${width} × ${height} px (you uploaded ${pyramid.image.width} × ${pyramid.image.height}). Stages: ${stages}.`;
    seenCanvas.setAttribute("aria-label", `Your image at ${width} by ${height} pixels, as the model sees it`);
    seen.hidden = false;
  }

  // --- how long it would take here ------------------------------------------------------------------------
  const estimate = ref(root, "estimate");

  function showEstimate(expected) {
    const stages = expected.stages.map((s) => duration(s.seconds)).join(", ");
    const head = expected.sr_head ? `; then the enlargement head, ${duration(expected.sr_head.seconds)}` : "";
    const basis =
      expected.basis === "measured"
        ? `from the pace this service's workers measured (${expected.device})`
        : `a first guess: no training has been measured on this service's ${expected.device} yet`;
    estimate.textContent = `Expected training time: about ${duration(expected.total_s)} (${expected.stages.length} stages: ${stages}${head}), ${basis}. Waiting in the queue comes on top.`;
    estimate.hidden = false;
  }

  preset.addEventListener("change", () => {
    describeChoices();
    updatePreview();
  });
  mode.addEventListener("change", () => {
    describeChoices();
    updatePreview();
  });
  for (const name of ["train_stages", "iters_per_stage", "max_size", "min_size"]) fields[name].addEventListener("change", updatePreview);
  srFactor.addEventListener("change", updatePreview);

  // --- start -----------------------------------------------------------------------------------------------------
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(root);
    if (!file) {
      showError(imageError, new Error("Choose or drop an image to train on."), "No image yet.");
      fileInput.focus();
      return;
    }
    const data = new FormData();
    data.append("image", file, file.name);
    data.append("preset", preset.value);
    data.append("mode", mode.value);
    for (const name of NUMBER_FIELDS) if (fields[name].value !== "") data.append(name, fields[name].value);
    if (srFactor.value !== "") data.append("sr_factor", srFactor.value);
    start.disabled = true;
    start.textContent = "Uploading…";
    try {
      const model = await postForm("/v1/models", data);
      context.refreshModels();
      context.navigate(`#/models/${model.id}`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return context.onUnauthorized(error);
      const box = error instanceof ApiError && IMAGE_PROBLEMS.has(error.slug) ? imageError : null;
      if (box) showError(box, error);
      else showProblemInForm(form, error, formError);
      (box ? fileInput : start).focus();
    } finally {
      start.disabled = false;
      start.textContent = "Start training";
    }
  });

  return {
    leave() {
      left = true;
      if (bitmap) bitmap.close();
    },
  };
}

function setBounds(input, range) {
  input.min = range.min;
  input.max = range.max;
}
