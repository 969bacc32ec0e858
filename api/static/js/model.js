// One model: its training live (the training job's Server-Sent Events: state, progress and queue position
// as they change, a stage preview at each `stage_done`; GET /v1/models/{id} every second where streaming
// fails), then its gallery, drawing more (sample jobs), animations, download and delete.

import { paintableStages } from "./paint.js";
import { ApiError, FINAL_STATES, followEvents, getJSON, poll, postJSON, query, remove } from "./api.js";
import { bytes, clearError, clearErrors, duration, el, fromTemplate, ref, saveAs, shortId, showProblemInForm, stateBadge, when } from "./ui.js";
import { viewScope } from "./view.js";

const HARMONIZING_MODES = new Set(["harmonization", "editing"]);
const GALLERY_PAGE = 24;

export function renderModel(view, modelId, context) {
  const root = fromTemplate("tpl-model");
  view.append(root);
  const vocabulary = context.vocabulary;
  const base = `/v1/models/${modelId}`;
  const scope = viewScope(context);
  const { fail, pollers, track: show } = scope;
  let model = null;
  let top = null; // {width, height} the model draws at
  let lastEventId = null;
  let readingEvents = false;
  const stageTiles = new Map();

  const modelError = ref(root, "model-error");
  ref(root, "model-id").textContent = modelId;

  // --- the head: state, facts, actions ---------------------------------------------------------------------
  function renderHead() {
    ref(root, "state").replaceChildren(stateBadge(model.state));
    const p = model.params;
    const facts = [p.mode || "generation", `preset ${p.preset || "paper"}`, `uploaded ${model.image.width} × ${model.image.height} px`];
    if (top) facts.push(`draws at ${top.width} × ${top.height} px`);
    if (model.stages_planned && model.state === "succeeded" && model.stages_trained < model.stages_planned) {
      facts.push(`${model.stages_trained} of ${model.stages_planned} stages trained (kept when canceled)`);
    }
    facts.push(`created ${when(model.created_at)}`);
    ref(root, "meta").textContent = facts.join(" · ");
    ref(root, "cancel").hidden = FINAL_STATES.has(model.state) || model.cancel_requested;
    const trained = model.state === "succeeded";
    const harmonize = ref(root, "harmonize-link");
    harmonize.hidden = !(trained && HARMONIZING_MODES.has(p.mode));
    harmonize.href = `#/models/${modelId}/harmonize`;
    const paint = ref(root, "paint-link");
    paint.hidden = !(trained && vocabulary.paint_modes.includes(p.mode || "generation") && paintableStages(model) >= 2); // a painting enters at stage 2 or later
    paint.href = `#/models/${modelId}/paint`;
    ref(root, "download-checkpoint").hidden = !(trained && model.links.checkpoint);
  }

  // Cancel asks first. After a finished stage it offers to keep the stages trained so far (a smaller model
  // that works like any other) beside discarding; before one, or while queued, there is nothing to keep.
  const cancelDialog = ref(root, "cancel-dialog");
  const keepButton = ref(root, "cancel-keep");
  ref(root, "cancel").addEventListener("click", () => {
    clearError(modelError);
    const done = model.stages_trained || 0;
    const planned = model.stages_planned;
    const canKeep = model.state === "running" && done >= 1;
    keepButton.hidden = !canKeep;
    keepButton.textContent = `Stop here and keep the ${done} stage${done === 1 ? "" : "s"} trained so far`;
    let text;
    if (model.state === "queued") text = "The training has not started: canceling discards it.";
    else if (!canKeep) text = "No stage has finished yet, so there is nothing to keep: canceling discards the training.";
    else text = `${done}${planned ? ` of ${planned}` : ""} stages are trained. Keep them as a smaller model (it draws at stage ${done}'s size and works like any other), or discard the training.`;
    ref(root, "cancel-dialog-text").textContent = text;
    cancelDialog.returnValue = "";
    cancelDialog.showModal();
  });

  cancelDialog.addEventListener("close", async () => {
    const choice = cancelDialog.returnValue;
    if (choice !== "keep" && choice !== "discard") return;
    const button = ref(root, "cancel");
    button.disabled = true;
    try {
      model = await postJSON(`${base}/cancel`, choice === "keep" ? { keep_trained_stages: true } : {});
      renderHead();
      renderProgress();
    } catch (error) {
      fail(modelError, error, "The training could not be canceled.");
    } finally {
      button.disabled = false;
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
      const partial = model.stages_planned && model.stages_trained < model.stages_planned;
      const parts = [partial ? `Stopped after ${model.stages_trained} of ${model.stages_planned} stages, which the model keeps (${duration(model.duration_s)}).` : `Trained in ${duration(model.duration_s)}.`];
      const head = model.sr_head_training;
      if (head && !FINAL_STATES.has(head.state)) parts.push("The model is ready; its enlargement head trains now (see Super-resolution).");
      progressText.textContent = parts.join(" ");
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
    if (readingEvents || !model.train_job_id || scope.left) return;
    readingEvents = true;
    try {
      for (;;) {
        const page = await getJSON(`/v1/jobs/${model.train_job_id}/events?${query({ limit: 500, after: lastEventId })}`);
        for (const event of page.data) {
          lastEventId = event.id;
          if (event.type === "stage_done") stageDone(event);
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

  // A finished stage: its preview, and the count the cancel dialog offers to keep (the event stream
  // carries the job, not the model's stages_trained).
  function stageDone(event) {
    model.stages_trained = Math.max(model.stages_trained || 0, event.data.stages_done);
    const stages = model.train_config?.train_stages || model.stages_planned || model.progress?.num_stages;
    if (event.links.preview) addStageTile(event.data.stage, event.links.preview, Boolean(stages) && event.data.stage === stages - 1);
  }

  function addStageTile(stage, url, final) {
    if (stageTiles.has(stage)) {
      // known to be the last only now (the model's config arrived after the stage's event): say so
      if (final) stageTiles.get(stage).querySelector("figcaption").textContent = `Stage ${stage + 1} (final)`;
      return;
    }
    const stages = model.train_config?.train_stages || model.progress?.num_stages;
    const of = stages ? ` of ${stages}` : "";
    const what = HARMONIZING_MODES.has(model.params.mode) ? "The painting put in at stage 1 and rendered" : "What the model draws";
    const img = el("img", { alt: `${what} after stage ${stage + 1}${of}`, loading: "lazy" });
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
      if (scope.left) return;
      const body = JSON.parse(message.data);
      if (message.event === "job") {
        const changed = body.state !== model.state;
        for (const name of FOLLOWED_FIELDS) model[name] = body[name];
        renderHead();
        renderProgress();
        if (changed) context.refreshModels();
      } else if (message.id !== undefined) {
        if (lastEventId === null || body.id > lastEventId) lastEventId = body.id;
        if (body.type === "stage_done") stageDone(body);
      }
    });
    pollers.push(follower);
    follower.done
      .then((how) => {
        // Ended: one last read of the model (its links, the final facts), through the poller, which also
        // waits out a 503. Streaming unavailable here: the poller follows the whole training instead.
        if (how && !scope.left) followByPolling();
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
        if (!final || scope.left) return;
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
      if (scope.left) return;
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
      if (!done || scope.left) return;
      if (done.state !== "succeeded") throw new ApiError({ title: `The sample job ${done.state}.`, detail: done.error || "" });
      for (const sample of [...done.samples].reverse()) {
        if (!shownSamples.has(sample.id)) gallery.prepend(sampleTile(sample));
      }
      const first = done.samples[0];
      drawStatus.textContent = `Drew ${done.samples.length} image${done.samples.length === 1 ? "" : "s"} of ${first.width} × ${first.height} px.`;
    } catch (error) {
      drawStatus.textContent = "";
      if (!scope.left) showProblemInForm(drawForm, error, ref(root, "draw-error"));
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
      if (scope.left) return;
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
      ? el("video", { "aria-label": `Animation: ${params}`, width: job.result.width, height: job.result.height, loop: true, autoplay: true, playsinline: true, controls: true })
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
      if (!done || scope.left) return;
      if (done.state !== "succeeded") throw new ApiError({ title: `The animation job ${done.state}.`, detail: done.error || "" });
      animateStatus.textContent = "Done.";
      animations.prepend(animationTile(done));
    } catch (error) {
      animateStatus.textContent = "";
      if (!scope.left) showProblemInForm(animateForm, error, ref(root, "animate-error"));
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
    const training = model.sr_head_training;
    const active = Boolean(training && !FINAL_STATES.has(training.state));
    const partial = model.stages_planned && model.stages_trained < model.stages_planned;
    srSection.hidden = !vocabulary.sr_modes.includes(model.params.mode || "generation");
    srHeadForm.hidden = Boolean(head) || active || partial;
    srForm.hidden = !head;
    let about;
    if (head) about = `Its head was trained for ×${head.sr_train} (${head.passes} passes); this model's image enlarges up to ×${head.max_factor}. The detail is invented: plausible, not the true one.`;
    else if (active) about = "Its enlargement head trains now, as a job of its own; the model is ready to use meanwhile.";
    else if (partial) about = "This model kept fewer stages than planned when its training was canceled; a head is trained on a complete model.";
    else about = "This model has no super-resolution head yet: train one (about one more stage of training), then enlarge its image.";
    ref(root, "sr-about").textContent = about;
    if (head && srFactor.value === "") srFactor.value = String(Math.min(head.sr_train, head.max_factor));
    const preset = vocabulary.presets.find((p) => p.name === (model.params.preset || "paper"));
    if (preset) ref(root, "sr-head-iterations").placeholder = String(preset.sr_head_iters);
    if (training && (active || !head)) renderHeadTraining(training.state, training.progress, training.error);
    else headBox.hidden = true;
    if (active) followHead(training.job_id);
  }

  // --- the head's own training (a train_sr_head job): progress like a training's, a cancel that keeps the model
  const headBox = ref(root, "head-training");
  const headBar = ref(root, "head-bar");
  const headText = ref(root, "head-text");
  const headCancel = ref(root, "head-cancel");
  let followedHead = null;

  function renderHeadTraining(state, p, error) {
    headBox.hidden = false;
    headCancel.hidden = FINAL_STATES.has(state);
    headText.classList.toggle("error-text", state === "failed");
    const parts = [`Enlargement head: ${state === "running" ? "training" : state}`];
    if (state === "queued") {
      headBar.removeAttribute("value");
      parts.push("waiting for a worker");
    } else if (state === "running" && p) {
      headBar.value = p.percent;
      parts.push(`iteration ${p.iteration} of ${p.iters_per_stage}`, `${p.percent.toFixed(1)}%`);
      if (p.eta_s !== null && p.eta_s !== undefined) parts.push(`about ${duration(p.eta_s)} left`);
    } else if (state === "running") {
      headBar.removeAttribute("value");
      parts.push("starting");
    } else {
      headBar.value = state === "succeeded" ? 100 : p ? p.percent : 0;
      if (state === "failed") parts.push(error || "no reason given");
      if (state === "canceled") parts.push("the model is unchanged");
    }
    headText.textContent = parts.join(" · ");
  }

  function followHead(jobId) {
    if (followedHead === jobId || scope.left) return;
    followedHead = jobId;
    headCancel.dataset.jobId = jobId;
    const poller = poll(`/v1/jobs/${jobId}`, (job) => renderHeadTraining(job.state, job.progress, job.error));
    pollers.push(poller);
    poller.done
      .then(async (job) => {
        if (!job || scope.left) return;
        followedHead = null;
        model = await getJSON(base);
        if (scope.left) return;
        renderSuperResolution();
        renderProgress();
        if (job.state !== "succeeded") renderHeadTraining(job.state, job.progress, job.error);
      })
      .catch((error) => fail(modelError, error, "The head's training could not be followed."));
  }

  headCancel.addEventListener("click", async () => {
    if (!window.confirm("Cancel the enlargement head's training? The model stays as it is.")) return;
    headCancel.disabled = true;
    try {
      await postJSON(`/v1/jobs/${headCancel.dataset.jobId}/cancel`, {});
    } catch (error) {
      fail(modelError, error, "The head's training could not be canceled.");
    } finally {
      headCancel.disabled = false;
    }
  });

  async function loadEnlargements() {
    try {
      const page = await getJSON(`/v1/jobs?${query({ model_id: modelId, kind: "super_resolve", limit: 12 })}`);
      if (scope.left) return;
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
    const view = el("button", { type: "button", class: "secondary small", "aria-label": `View enlargement ${shortId(job.id)} at its real size` }, "View at real size");
    view.addEventListener("click", () => openViewer(job, view));
    const download = el("button", { type: "button", class: "secondary small", "aria-label": `Download enlargement ${shortId(job.id)}` }, "Download");
    download.addEventListener("click", async () => saveAs(await show(file.url), `${job.id}-${file.name}`));
    const versions = r.files.length > 1 ? `, ${r.files.length} versions` : "";
    const warned = r.warnings.length ? " (a step the head was not trained for)" : "";
    const caption = `${label}: ${r.input_width} × ${r.input_height} → ${r.width} × ${r.height} px${versions}${warned}`;
    tile.append(el("figure", {}, img, el("figcaption", {}, caption)), el("div", { class: "tile-actions" }, view, download));
    return tile;
  }

  // One enlargement at its real size (never shrunk to a thumbnail), with a zoom, beside the same input
  // enlarged by plain bicubic interpolation to the same size; the two panes scroll together.
  const viewer = ref(root, "sr-view");
  const zoom = ref(root, "sr-zoom");
  const viewSR = ref(root, "sr-view-sr");
  const viewBicubic = ref(root, "sr-view-bicubic");
  let viewed = null;
  let viewerOpener = null; // the button that opened the viewer: Close gives it the focus back

  function applyZoom() {
    const factor = Number(zoom.value);
    ref(root, "sr-zoom-out").textContent = `${factor}×`;
    zoom.setAttribute("aria-valuetext", `${factor} times the real size`);
    if (!viewed) return;
    for (const img of [viewSR, viewBicubic]) {
      img.style.width = `${viewed.width * factor}px`;
      img.style.height = `${viewed.height * factor}px`;
    }
  }
  zoom.addEventListener("input", applyZoom);

  const panes = [ref(root, "sr-view-left"), ref(root, "sr-view-right")];
  for (const pane of panes) {
    pane.addEventListener("scroll", () => {
      for (const other of panes) {
        if (other === pane) continue;
        if (other.scrollLeft !== pane.scrollLeft) other.scrollLeft = pane.scrollLeft;
        if (other.scrollTop !== pane.scrollTop) other.scrollTop = pane.scrollTop;
      }
    });
  }

  async function openViewer(job, opener) {
    const r = job.result;
    viewed = { width: r.width, height: r.height };
    viewerOpener = opener;
    const size = `${r.width} × ${r.height} px`;
    const title = ref(root, "sr-view-title");
    title.textContent = `Enlargement ×${job.params.factor} at its real size: ${r.input_width} × ${r.input_height} → ${size}`;
    viewSR.alt = `Super-resolution ×${job.params.factor}, ${size}`;
    // without a comparison the bicubic pane is hidden; its caption says so
    viewBicubic.alt = r.comparison_url ? `The same input enlarged by bicubic interpolation, ${size}` : "";
    panes[1].hidden = !r.comparison_url;
    ref(root, "sr-view-sr-caption").textContent = `Super-resolution (invented detail), ${size}`;
    ref(root, "sr-view-bicubic-caption").textContent = r.comparison_url ? `Bicubic interpolation, ${size}` : "No bicubic comparison stored for this enlargement";
    viewer.hidden = false;
    title.focus(); // into the viewer, for keyboard and screen-reader users
    applyZoom();
    try {
      viewSR.src = await show(r.files[0].url);
      if (r.comparison_url) viewBicubic.src = await show(r.comparison_url);
      else viewBicubic.removeAttribute("src");
    } catch (error) {
      fail(ref(root, "sr-error"), error, "The enlargement could not be shown.");
    }
    viewer.scrollIntoView({ block: "nearest" });
  }
  ref(root, "sr-view-close").addEventListener("click", () => {
    viewer.hidden = true;
    viewed = null;
    if (viewerOpener?.isConnected) viewerOpener.focus();
    viewerOpener = null;
  });

  async function runJob(form, button, status, errorBox, path, body, working) {
    clearErrors(form);
    button.disabled = true;
    status.textContent = working;
    try {
      const job = await postJSON(`${base}/${path}`, body);
      const poller = poll(`/v1/jobs/${job.id}`, () => {});
      pollers.push(poller);
      const done = await poller.done;
      if (!done || scope.left) return null;
      if (done.state !== "succeeded") throw new ApiError({ title: `The job ${done.state}.`, detail: done.error || "" });
      status.textContent = "Done.";
      return done;
    } catch (error) {
      status.textContent = "";
      if (!scope.left) showProblemInForm(form, error, errorBox);
      return null;
    } finally {
      button.disabled = false;
    }
  }

  srHeadForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(srHeadForm);
    const button = ref(root, "sr-head-train");
    button.disabled = true;
    try {
      const body = { factor: Number(ref(root, "sr-head-factor").value) };
      const iterations = ref(root, "sr-head-iterations").value;
      if (iterations !== "") body.iterations = Number(iterations);
      const job = await postJSON(`${base}/sr-head`, body);
      srHeadForm.hidden = true;
      renderHeadTraining(job.state, job.progress, job.error);
      followHead(job.id);
    } catch (error) {
      if (!scope.left) showProblemInForm(srHeadForm, error, ref(root, "sr-head-error"));
    } finally {
      button.disabled = false;
    }
  });

  srForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { factor: Number(srFactor.value), n: Number(srN.value), noise_scale: Number(srNoise.value) };
    const done = await runJob(srForm, ref(root, "sr-run"), ref(root, "sr-status"), ref(root, "sr-error"), "super-resolutions", body, "Enlarging…");
    if (done) enlargements.prepend(enlargementTile(done));
  });

  // Harmonization and editing models never learned to draw from noise: their samples are altered copies of
  // their own image, re-rendered (what ConSinGAN's generate_samples shows), and the page says so.
  function describeDrawing() {
    const mode = model.params.mode;
    if (!HARMONIZING_MODES.has(mode)) return;
    const altered = mode === "harmonization" ? "random colour changes and cut-out holes" : "shuffled patches and a little noise";
    const about = ref(root, "draw-about");
    about.textContent =
      `This ${mode} model learned to re-render its own image, not to invent new scenes. The training's first preview is the image put in at stage 1 and rendered: ` +
      `what a ${mode} does to it. "Draw variations" makes copies of the image with ${altered}, re-rendered by the model (what ConSinGAN shows for such models). ` +
      `To put an object into the image, use "Harmonize an object into it".`;
    about.hidden = false;
    ref(root, "draw").textContent = "Draw variations";
  }

  function describeStrip() {
    if (HARMONIZING_MODES.has(model.params.mode)) ref(root, "stage-strip-title").textContent = "The image put in at stage 1 and rendered, after each stage";
  }

  // --- once trained --------------------------------------------------------------------------------------------
  function showTrained() {
    describeDrawing();
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
      if (scope.left) return;
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
    if (scope.left) return;
    renderHead();
    renderProgress();
    describeStrip();
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

  return { leave: scope.leave };
}
