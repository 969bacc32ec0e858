// One model: its training live (the training job's Server-Sent Events: state, progress and queue position
// as they change, a stage preview at each `stage_done`; GET /v1/models/{id} every second where streaming
// fails), then its gallery, drawing more (sample jobs), animations, download and delete.

import { ApiError, FINAL_STATES, displayURL, followEvents, getJSON, poll, postJSON, query, remove } from "./api.js";
import { bytes, clearError, clearErrors, duration, el, fromTemplate, ref, saveAs, shortId, showError, showProblemInForm, stateBadge, when } from "./ui.js";

const HARMONIZING_MODES = new Set(["harmonization", "editing"]);
const GALLERY_PAGE = 24;

export function renderModel(view, modelId, context) {
  const root = fromTemplate("tpl-model");
  view.append(root);
  const vocabulary = context.vocabulary;
  const base = `/v1/models/${modelId}`;
  const urls = []; // object URLs to free when the view is left
  const pollers = [];
  let left = false;
  let model = null;
  let top = null; // {width, height} the model draws at
  let lastEventId = null;
  let readingEvents = false;
  const stageTiles = new Map();

  const modelError = ref(root, "model-error");
  ref(root, "model-id").textContent = modelId;

  async function show(url) {
    const shown = await displayURL(url);
    if (shown.startsWith("blob:")) urls.push(shown);
    return shown;
  }

  function fail(box, error, lead) {
    if (left) return;
    if (error instanceof ApiError && error.status === 401) return context.onUnauthorized(error);
    showError(box, error, lead);
  }

  // --- the head: state, facts, actions ---------------------------------------------------------------------
  function renderHead() {
    ref(root, "state").replaceChildren(stateBadge(model.state));
    const p = model.params;
    const facts = [p.mode || "generation", `preset ${p.preset || "paper"}`, `uploaded ${model.image.width} × ${model.image.height} px`];
    if (top) facts.push(`draws at ${top.width} × ${top.height} px`);
    facts.push(`created ${when(model.created_at)}`);
    ref(root, "meta").textContent = facts.join(" · ");
    ref(root, "cancel").hidden = FINAL_STATES.has(model.state) || model.cancel_requested;
    const trained = model.state === "succeeded";
    const harmonize = ref(root, "harmonize-link");
    harmonize.hidden = !(trained && HARMONIZING_MODES.has(p.mode));
    harmonize.href = `#/models/${modelId}/harmonize`;
    ref(root, "download-checkpoint").hidden = !(trained && model.links.checkpoint);
  }

  ref(root, "cancel").addEventListener("click", async (event) => {
    clearError(modelError);
    event.target.disabled = true;
    try {
      model = await postJSON(`${base}/cancel`, {});
      renderHead();
      renderProgress();
    } catch (error) {
      fail(modelError, error, "The training could not be canceled.");
    } finally {
      event.target.disabled = false;
    }
  });

  ref(root, "delete").addEventListener("click", async (event) => {
    clearError(modelError);
    if (!window.confirm(`Delete model ${modelId} with all its images? This cannot be undone.`)) return;
    event.target.disabled = true;
    try {
      await remove(base);
      context.refreshModels();
      context.navigate("#/new");
    } catch (error) {
      event.target.disabled = false;
      fail(modelError, error, "The model could not be deleted.");
    }
  });

  ref(root, "download-checkpoint").addEventListener("click", async () => {
    clearError(modelError);
    try {
      saveAs(await show(model.links.checkpoint), `${modelId}.safetensors`);
    } catch (error) {
      fail(modelError, error, "The checkpoint could not be downloaded.");
    }
  });

  // --- training progress -------------------------------------------------------------------------------------
  const bar = ref(root, "progress-bar");
  const progressText = ref(root, "progress-text");

  function renderProgress() {
    const p = model.progress;
    progressText.classList.toggle("error-text", model.state === "failed");
    if (model.state === "queued") {
      bar.removeAttribute("value"); // indeterminate
      const ahead = model.queue_position;
      if (ahead === null || ahead === undefined) progressText.textContent = "Queued: waiting for a worker…";
      else if (ahead === 0) progressText.textContent = "Queued: next in line, waiting for a worker…";
      else progressText.textContent = `Queued: ${ahead} ${ahead === 1 ? "job" : "jobs"} ahead of yours`;
    } else if (model.state === "running" && p) {
      bar.value = p.percent;
      const parts = [`Stage ${p.stage + 1} of ${p.num_stages}`, `iteration ${p.iteration} of ${p.iters_per_stage}`, `${p.percent.toFixed(1)}%`];
      if (p.eta_s !== null && p.eta_s !== undefined) parts.push(`about ${duration(p.eta_s)} left`);
      if (model.cancel_requested) parts.push("stopping…");
      progressText.textContent = parts.join(" · ");
    } else if (model.state === "running") {
      bar.removeAttribute("value");
      progressText.textContent = "Starting…";
    } else if (model.state === "succeeded") {
      bar.value = 100;
      progressText.textContent = `Trained in ${duration(model.duration_s)}.`;
    } else if (model.state === "failed") {
      bar.value = p ? p.percent : 0;
      progressText.textContent = `Training failed: ${model.error || "no reason given"}`;
    } else {
      bar.value = p ? p.percent : 0;
      progressText.textContent = "Training canceled.";
    }
  }

  // New `stage_done` events since the last read: each brings a preview of what the model draws so far.
  async function readEvents() {
    if (readingEvents || !model.train_job_id || left) return;
    readingEvents = true;
    try {
      for (;;) {
        const page = await getJSON(`/v1/jobs/${model.train_job_id}/events?${query({ limit: 500, after: lastEventId })}`);
        for (const event of page.data) {
          lastEventId = event.id;
          if (event.type === "stage_done" && event.links.preview) addStageTile(event.data.stage, event.links.preview, false);
        }
        if (!page.next_cursor) break;
      }
    } catch (error) {
      // While training is followed, a 503 (a dependency down for a moment) is read again at the next poll.
      if (error instanceof ApiError && error.status === 503 && !FINAL_STATES.has(model.state)) return;
      fail(modelError, error, "The training's events could not be read.");
    } finally {
      readingEvents = false;
    }
  }

  function addStageTile(stage, url, final) {
    if (stageTiles.has(stage)) return;
    const stages = model.train_config?.train_stages || model.progress?.num_stages;
    const of = stages ? ` of ${stages}` : "";
    const img = el("img", { alt: `What the model draws after stage ${stage + 1}${of}`, loading: "lazy" });
    const tile = el("li", { class: "stage-tile", dataset: { stage } }, el("figure", {}, img, el("figcaption", {}, `Stage ${stage + 1}${final ? " (final)" : ""}`)));
    stageTiles.set(stage, tile);
    const strip = ref(root, "stage-strip");
    const after = [...strip.children].find((other) => Number(other.dataset.stage) > stage);
    strip.insertBefore(tile, after || null);
    ref(root, "stage-strip-empty").hidden = true;
    show(url).then((shown) => (img.src = shown)).catch((error) => fail(modelError, error, "A stage preview could not be loaded."));
  }

  // The strip starts with the training image as the model sees it, to compare the stages against.
  function addInputTile() {
    const img = el("img", { alt: "The training image" });
    const tile = el("li", { dataset: { stage: -1 } }, el("figure", {}, img, el("figcaption", {}, "Training image")));
    ref(root, "stage-strip").prepend(tile);
    show(model.input_url).then((shown) => (img.src = shown)).catch(() => tile.remove());
  }

  // The training job's snapshot (an SSE `job` message) onto the model this view shows.
  const FOLLOWED_FIELDS = ["state", "progress", "queue_position", "error", "cancel_requested", "started_at", "finished_at", "duration_s"];

  function follow() {
    if (!model.train_job_id || typeof TextDecoderStream === "undefined") return followByPolling();
    const follower = followEvents(`/v1/jobs/${model.train_job_id}/events`, (message) => {
      if (left) return;
      const body = JSON.parse(message.data);
      if (message.event === "job") {
        const changed = body.state !== model.state;
        for (const name of FOLLOWED_FIELDS) model[name] = body[name];
        renderHead();
        renderProgress();
        if (changed) context.refreshModels();
      } else if (message.id !== undefined) {
        if (lastEventId === null || body.id > lastEventId) lastEventId = body.id;
        if (body.type === "stage_done" && body.links.preview) addStageTile(body.data.stage, body.links.preview, false);
      }
    });
    pollers.push(follower);
    follower.done
      .then((how) => {
        // Ended: one last read of the model (its links, the final facts), through the poller, which also
        // waits out a 503. Streaming unavailable here: the poller follows the whole training instead.
        if (how && !left) followByPolling();
      })
      .catch((error) => fail(modelError, error, "The training could not be followed."));
  }

  function followByPolling() {
    const poller = poll(base, (current) => {
      const changed = !model || current.state !== model.state;
      model = current;
      renderHead();
      renderProgress();
      readEvents();
      if (changed) context.refreshModels();
    });
    pollers.push(poller);
    poller.done
      .then((final) => {
        if (!final || left) return;
        model = final;
        readEvents();
        if (model.state === "succeeded") showTrained();
      })
      .catch((error) => fail(modelError, error, "The model could not be read."));
  }

  // --- gallery -------------------------------------------------------------------------------------------------
  const gallery = ref(root, "gallery");
  const galleryError = ref(root, "gallery-error");
  const galleryMore = ref(root, "gallery-more");
  let galleryCursor = null;
  const shownSamples = new Set();

  async function loadGallery(append) {
    clearError(galleryError);
    try {
      const page = await getJSON(`${base}/samples?${query({ limit: GALLERY_PAGE, after: append ? galleryCursor : null })}`);
      if (left) return;
      for (const sample of page.data) gallery.append(sampleTile(sample));
      galleryCursor = page.next_cursor;
      galleryMore.hidden = !galleryCursor;
      const firstPreview = page.data.filter((s) => s.is_preview).at(-1);
      if (firstPreview && model.train_config) addStageTile(model.train_config.train_stages - 1, firstPreview.url, true);
    } catch (error) {
      fail(galleryError, error, "The gallery could not be loaded.");
    }
  }
  galleryMore.addEventListener("click", () => loadGallery(true));

  function sampleTile(sample) {
    shownSamples.add(sample.id);
    const kind = sample.is_preview ? "preview" : "drawn";
    const what = sample.is_preview ? "drawn when the training ended" : "drawn on request";
    const img = el("img", { alt: `Sample ${sample.id}: ${sample.width} × ${sample.height} px, ${what}`, width: sample.width, height: sample.height });
    show(sample.url).then((url) => (img.src = url)).catch((error) => fail(galleryError, error, "An image could not be loaded."));
    const tile = el(
      "li",
      { class: "tile", dataset: { sampleId: sample.id } },
      el("figure", {}, img, el("figcaption", {}, `${sample.width} × ${sample.height} · ${kind} · ${bytes(sample.size_bytes)}`)),
    );
    const download = el("button", { type: "button", class: "secondary small", "aria-label": `Download sample ${shortId(sample.id)}` }, "Download");
    download.addEventListener("click", async () => {
      try {
        saveAs(await show(sample.url), `${sample.id}.png`);
      } catch (error) {
        fail(galleryError, error, "The image could not be downloaded.");
      }
    });
    const erase = el("button", { type: "button", class: "secondary small", "aria-label": `Delete sample ${shortId(sample.id)}` }, "Delete");
    erase.addEventListener("click", async () => {
      erase.disabled = true;
      try {
        await remove(`${base}/samples/${sample.id}`);
        tile.remove();
        shownSamples.delete(sample.id);
      } catch (error) {
        erase.disabled = false;
        fail(galleryError, error, "The image could not be deleted.");
      }
    });
    tile.append(el("div", { class: "tile-actions" }, download, erase));
    return tile;
  }

  // --- draw more ---------------------------------------------------------------------------------------------
  const drawForm = ref(root, "draw-form");
  const drawStatus = ref(root, "draw-status");
  const n = ref(root, "n");
  const scaleW = ref(root, "scale_w");
  const scaleH = ref(root, "scale_h");
  n.max = vocabulary.limits.samples_per_job.max;
  for (const slider of [scaleW, scaleH]) {
    slider.min = vocabulary.limits.sample_scale.min;
    slider.max = vocabulary.limits.sample_scale.max;
    slider.addEventListener("input", describeScales);
  }

  function describeScales() {
    const describe = (slider, side) => {
      const scale = Number(slider.value);
      const px = top ? ` = ${Math.floor(top[side] * scale)} px` : "";
      slider.setAttribute("aria-valuetext", `${scale.toFixed(2)} times${px}`);
      return `${scale.toFixed(2)}×${px}`;
    };
    ref(root, "scale-w-out").textContent = describe(scaleW, "width");
    ref(root, "scale-h-out").textContent = describe(scaleH, "height");
  }
  describeScales();

  drawForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(drawForm);
    const button = ref(root, "draw");
    const body = { n: Number(n.value), scale_w: Number(scaleW.value), scale_h: Number(scaleH.value) };
    const seed = ref(root, "seed").value;
    if (seed !== "") body.seed = Number(seed);
    button.disabled = true;
    drawStatus.textContent = `Drawing ${body.n} image${body.n === 1 ? "" : "s"}…`;
    try {
      const job = await postJSON(`${base}/samples`, body);
      const poller = poll(`/v1/jobs/${job.id}`, () => {});
      pollers.push(poller);
      const done = await poller.done;
      if (!done || left) return;
      if (done.state !== "succeeded") throw new ApiError({ title: `The sample job ${done.state}.`, detail: done.error || "" });
      for (const sample of [...done.samples].reverse()) {
        if (!shownSamples.has(sample.id)) gallery.prepend(sampleTile(sample));
      }
      const first = done.samples[0];
      drawStatus.textContent = `Drew ${done.samples.length} image${done.samples.length === 1 ? "" : "s"} of ${first.width} × ${first.height} px.`;
    } catch (error) {
      drawStatus.textContent = "";
      if (!left) showProblemInForm(drawForm, error, ref(root, "draw-error"));
    } finally {
      button.disabled = false;
    }
  });

  // --- animations ------------------------------------------------------------------------------------------------
  const animateForm = ref(root, "animate-form");
  const animations = ref(root, "animations");
  const animateStatus = ref(root, "animate-status");
  const frames = ref(root, "frames");
  const fps = ref(root, "fps");
  frames.min = vocabulary.limits.animation_frames.min;
  frames.max = vocabulary.limits.animation_frames.max;
  fps.min = vocabulary.limits.animation_fps.min;
  fps.max = vocabulary.limits.animation_fps.max;
  const format = ref(root, "format");
  const formatNames = { gif: "GIF", webp: "WebP (lossless)", mp4: "MP4 (H.264 video, smallest)" };
  for (const name of vocabulary.animation_formats) format.append(new Option(formatNames[name] || name.toUpperCase(), name));

  async function loadAnimations() {
    try {
      const page = await getJSON(`/v1/jobs?${query({ model_id: modelId, kind: "animate", limit: 12 })}`);
      if (left) return;
      animations.replaceChildren(...page.data.map(animationTile));
    } catch (error) {
      fail(ref(root, "animate-error"), error, "The animations could not be listed.");
    }
  }

  function animationTile(job) {
    const tile = el("li", { class: "tile", dataset: { jobId: job.id } });
    const params = `${job.params.frames} frames at ${job.params.fps} fps`;
    if (job.state !== "succeeded") {
      tile.append(el("p", { class: job.state === "failed" ? "error-text" : "hint" }, `${params}: ${job.state}${job.error ? `: ${job.error}` : ""}`));
      return tile;
    }
    // an MP4 plays in a muted, looping <video> (MP4 has no loop flag of its own); GIF and WebP are images
    const img = job.params.format === "mp4"
      ? el("video", { "aria-label": `Animation: ${params}`, width: job.result.width, height: job.result.height, loop: true, autoplay: true, playsinline: true })
      : el("img", { alt: `Animation: ${params}`, width: job.result.width, height: job.result.height });
    if (img.tagName === "VIDEO") img.muted = true; // autoplay needs the property; the attribute counts only at parse time
    show(job.result.url).then((url) => (img.src = url)).catch((error) => fail(ref(root, "animate-error"), error, "An animation could not be loaded."));
    const download = el("button", { type: "button", class: "secondary small", "aria-label": `Download animation ${shortId(job.id)}` }, "Download");
    const file = job.result.files[0];
    download.addEventListener("click", async () => saveAs(await show(file.url), `${job.id}-${file.name}`));
    tile.append(el("figure", {}, img, el("figcaption", {}, params)), el("div", { class: "tile-actions" }, download));
    return tile;
  }

  animateForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(animateForm);
    const button = ref(root, "animate");
    button.disabled = true;
    animateStatus.textContent = "Rendering the animation…";
    try {
      const job = await postJSON(`${base}/animations`, { frames: Number(frames.value), fps: Number(fps.value), format: format.value });
      const poller = poll(`/v1/jobs/${job.id}`, () => {});
      pollers.push(poller);
      const done = await poller.done;
      if (!done || left) return;
      if (done.state !== "succeeded") throw new ApiError({ title: `The animation job ${done.state}.`, detail: done.error || "" });
      animateStatus.textContent = "Done.";
      animations.prepend(animationTile(done));
    } catch (error) {
      animateStatus.textContent = "";
      if (!left) showProblemInForm(animateForm, error, ref(root, "animate-error"));
    } finally {
      button.disabled = false;
    }
  });

  // --- super-resolution -----------------------------------------------------------------------------------------
  const srSection = ref(root, "sr-section");
  const srForm = ref(root, "sr-form");
  const srHeadForm = ref(root, "sr-head-form");
  const enlargements = ref(root, "enlargements");
  const srFactor = ref(root, "sr-factor");
  const srN = ref(root, "sr-n");
  const srNoise = ref(root, "sr-noise");
  for (const input of [srFactor, ref(root, "sr-head-factor")]) {
    input.min = vocabulary.limits.sr_factor.min;
    input.max = vocabulary.limits.sr_factor.max;
  }
  srN.min = vocabulary.limits.sr_variants.min;
  srN.max = vocabulary.limits.sr_variants.max;
  srNoise.min = vocabulary.limits.sr_noise_scale.min;
  srNoise.max = vocabulary.limits.sr_noise_scale.max;
  const describeNoise = () => (ref(root, "sr-noise-out").textContent = `${Number(srNoise.value).toFixed(1)}×`);
  srNoise.addEventListener("input", describeNoise);
  describeNoise();

  function renderSuperResolution() {
    const head = model.sr_head;
    srSection.hidden = !vocabulary.sr_modes.includes(model.params.mode || "generation");
    srHeadForm.hidden = Boolean(head);
    srForm.hidden = !head;
    ref(root, "sr-about").textContent = head
      ? `Its head was trained for ×${head.sr_train} (${head.passes} passes); this model's image enlarges up to ×${head.max_factor}. The detail is invented: plausible, not the true one.`
      : "This model has no super-resolution head yet: train one (about one more stage of training), then enlarge its image.";
    if (head && srFactor.value === "") srFactor.value = String(Math.min(head.sr_train, head.max_factor));
  }

  async function loadEnlargements() {
    try {
      const page = await getJSON(`/v1/jobs?${query({ model_id: modelId, kind: "super_resolve", limit: 12 })}`);
      if (left) return;
      enlargements.replaceChildren(...page.data.map(enlargementTile));
    } catch (error) {
      fail(ref(root, "sr-error"), error, "The enlargements could not be listed.");
    }
  }

  function enlargementTile(job) {
    const tile = el("li", { class: "tile", dataset: { jobId: job.id } });
    const label = `×${job.params.factor}`;
    if (job.state !== "succeeded") {
      tile.append(el("p", { class: job.state === "failed" ? "error-text" : "hint" }, `${label}: ${job.state}${job.error ? `: ${job.error}` : ""}`));
      return tile;
    }
    const r = job.result;
    const file = r.files[0];
    const img = el("img", { alt: `Enlarged ${label}: ${r.width} × ${r.height} px`, width: r.width, height: r.height });
    show(file.url).then((url) => (img.src = url)).catch((error) => fail(ref(root, "sr-error"), error, "An enlargement could not be loaded."));
    const download = el("button", { type: "button", class: "secondary small", "aria-label": `Download enlargement ${shortId(job.id)}` }, "Download");
    download.addEventListener("click", async () => saveAs(await show(file.url), `${job.id}-${file.name}`));
    const versions = r.files.length > 1 ? `, ${r.files.length} versions` : "";
    const warned = r.warnings.length ? " (a step the head was not trained for)" : "";
    const caption = `${label}: ${r.input_width} × ${r.input_height} → ${r.width} × ${r.height} px${versions}${warned}`;
    tile.append(el("figure", {}, img, el("figcaption", {}, caption)), el("div", { class: "tile-actions" }, download));
    return tile;
  }

  async function runJob(form, button, status, errorBox, path, body, working) {
    clearErrors(form);
    button.disabled = true;
    status.textContent = working;
    try {
      const job = await postJSON(`${base}/${path}`, body);
      const poller = poll(`/v1/jobs/${job.id}`, () => {});
      pollers.push(poller);
      const done = await poller.done;
      if (!done || left) return null;
      if (done.state !== "succeeded") throw new ApiError({ title: `The job ${done.state}.`, detail: done.error || "" });
      status.textContent = "Done.";
      return done;
    } catch (error) {
      status.textContent = "";
      if (!left) showProblemInForm(form, error, errorBox);
      return null;
    } finally {
      button.disabled = false;
    }
  }

  srHeadForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { factor: Number(ref(root, "sr-head-factor").value) };
    const done = await runJob(srHeadForm, ref(root, "sr-head-train"), ref(root, "sr-head-status"), ref(root, "sr-head-error"), "sr-head", body, "Training the head…");
    if (!done) return;
    model = await getJSON(base);
    if (!left) renderSuperResolution();
  });

  srForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { factor: Number(srFactor.value), n: Number(srN.value), noise_scale: Number(srNoise.value) };
    const done = await runJob(srForm, ref(root, "sr-run"), ref(root, "sr-status"), ref(root, "sr-error"), "super-resolutions", body, "Enlarging…");
    if (done) enlargements.prepend(enlargementTile(done));
  });

  // --- once trained --------------------------------------------------------------------------------------------
  function showTrained() {
    ref(root, "gallery-section").hidden = false;
    ref(root, "animations-section").hidden = false;
    renderHead();
    renderSuperResolution();
    loadGallery(false);
    loadAnimations();
    loadEnlargements();
  }

  async function loadTop() {
    const p = model.params;
    const params = { width: model.image.width, height: model.image.height, preset: p.preset, mode: p.mode };
    for (const name of ["train_stages", "max_size", "min_size"]) if (p[name] !== undefined) params[name] = p[name];
    try {
      top = (await getJSON(`/v1/pyramid?${query(params)}`)).top;
      if (left) return;
      renderHead();
      describeScales();
    } catch {
      top = null; // only the size labels miss it
    }
  }

  async function load() {
    try {
      model = await getJSON(base);
    } catch (error) {
      ref(root, "progress-section").hidden = true;
      return fail(modelError, error, error instanceof ApiError && error.status === 404 ? "No such model." : "The model could not be loaded.");
    }
    if (left) return;
    renderHead();
    renderProgress();
    addInputTile();
    loadTop();
    readEvents();
    if (FINAL_STATES.has(model.state)) {
      if (model.state === "succeeded") showTrained();
    } else {
      follow();
    }
  }
  load();

  return {
    leave() {
      left = true;
      for (const poller of pollers) poller.stop();
      for (const url of urls) URL.revokeObjectURL(url);
    },
  };
}
