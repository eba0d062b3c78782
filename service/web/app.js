// The actionstyle page: pick a video, classify it, stylise it with a job, play and download it.
// Plain browser JavaScript, no framework and no build step. Server values are always written
// with textContent or as element properties, never as HTML.
"use strict";

const MAX_BYTES = 200 * 1024 * 1024;
const VIDEO_SUFFIXES = [
  ".mp4", ".m4v", ".avi", ".mov", ".3gp", ".3g2", ".mpeg", ".mpg", ".vob", ".mts", ".m2ts",
  ".ts", ".wmv", ".asf", ".webm", ".mkv",
];
const POLL_MS = 500;
const OWN_PAINTING = "__painting__";
const PREVIEW_SIDE = 480; // what POST /stylize/preview works at anyway
const PREVIEW_DEBOUNCE_MS = 250;
const FRAME_TIMEOUT_MS = 5000;
// Larger videos the browser cannot decode get no preview: not worth their upload for one frame.
const SERVER_FRAME_MAX_BYTES = 32 * 1024 * 1024;

const $ = (id) => document.getElementById(id);
const state = { file: null, jobId: null, polling: null, failingSince: null };
// The preview: one frame of the chosen video (null: none yet, or the browser cannot decode it).
const preview = { frame: null, noFrame: false, timer: null, ticket: 0 };

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function describeSize(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${bytes} bytes`;
}

function formatSeconds(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

// The reason an error response gives (a Problem body), or a plain description of the status.
async function problemOf(response) {
  try {
    const body = await response.json();
    if (body && typeof body.detail === "string") return body.detail;
  } catch (error) {
    // not JSON: fall through
  }
  return `the server answered ${response.status} ${response.statusText}`;
}

// The API key, when the server asks for one (ACTIONSTYLE_API_KEYS); kept in this browser only.
const KEY_STORAGE = "actionstyle-api-key";

function authHeaders() {
  const key = localStorage.getItem(KEY_STORAGE);
  return key ? { "X-API-Key": key } : {};
}

async function send(url, options = {}) {
  try {
    return await fetch(url, { ...options, headers: { ...authHeaders(), ...options.headers } });
  } catch (error) {
    throw new Error("the server cannot be reached; check that it is running");
  }
}

async function request(url, options) {
  const response = await send(url, options);
  if (!response.ok) throw new Error(await problemOf(response));
  return response.json();
}

// POST a form as request() does, calling onProgress(fraction, sentBytes, totalBytes) while the
// body goes out: a 200 MB video takes minutes on a home uplink, and fetch cannot report it.
function postWithProgress(url, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.responseType = "json";
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total, event.loaded, event.total);
    };
    xhr.onload = () => {
      const body = xhr.response;
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else if (body && typeof body.detail === "string") reject(new Error(body.detail));
      else reject(new Error(`the server answered ${xhr.status} ${xhr.statusText}`));
    };
    xhr.onerror = () => reject(new Error("the server cannot be reached; check that it is running"));
    xhr.send(form);
  });
}

function uploadedText(sent, total) {
  return `Uploading… ${Math.floor((sent / total) * 100)} % of ${describeSize(total)}`;
}

// <img> and <video> cannot send the key header: with a key, fetch the file and show a blob.
async function mediaUrl(url) {
  if (!localStorage.getItem(KEY_STORAGE)) return url;
  const response = await send(url);
  if (!response.ok) throw new Error(await problemOf(response));
  return URL.createObjectURL(await response.blob());
}

// A name without an extension is left to the server, which judges it by its content.
function namesAnotherType(name) {
  const dot = name.lastIndexOf(".");
  const lower = name.toLowerCase();
  return dot > 0 && dot < name.length - 1 && !VIDEO_SUFFIXES.some((s) => lower.endsWith(s));
}

function checkFile(file) {
  if (namesAnotherType(file.name)) {
    return `"${file.name}" is not a video we accept: choose an MP4, AVI, MOV, 3GP, MPEG, MTS, WMV, WebM or MKV file`;
  }
  if (file.size === 0) return `"${file.name}" is empty`;
  if (file.size > MAX_BYTES) {
    return `"${file.name}" is ${describeSize(file.size)}; the limit is 200 MB per file`;
  }
  return "";
}

function chooseFile(file) {
  showError("");
  const problem = checkFile(file);
  state.file = problem ? null : file;
  $("file-name").textContent = problem ? "" : `${file.name} (${describeSize(file.size)})`;
  $("predictions").replaceChildren();
  $("classify-button").disabled = !state.file;
  updateStylizeButton();
  if (problem) showError(problem);
  preview.frame = null;
  preview.noFrame = false;
  refreshPreview();
  if (!state.file) return;
  grabFrame(file).then((frame) => frame || serverFrame(file)).then((frame) => {
    if (state.file !== file) return; // another file was chosen meanwhile
    preview.frame = frame;
    preview.noFrame = !frame;
    refreshPreview();
  });
}

// A frame (about 1 s in) of the video as a JPEG of at most PREVIEW_SIDE px, drawn by the browser;
// null when the browser cannot decode the video (AVI, MPEG): the server draws it instead.
function grabFrame(file) {
  return new Promise((resolve) => {
    const video = document.createElement("video");
    const url = URL.createObjectURL(file);
    let timer = null;
    const done = (frame) => {
      clearTimeout(timer);
      URL.revokeObjectURL(url);
      video.removeAttribute("src");
      resolve(frame);
    };
    timer = setTimeout(() => done(null), FRAME_TIMEOUT_MS);
    video.muted = true;
    video.preload = "auto";
    video.addEventListener("error", () => done(null));
    video.addEventListener("loadeddata", () => {
      video.currentTime = Math.min(1, (video.duration || 0) / 2);
    }, { once: true });
    video.addEventListener("seeked", () => {
      if (!video.videoWidth || !video.videoHeight) return done(null);
      const scale = Math.min(1, PREVIEW_SIDE / Math.max(video.videoWidth, video.videoHeight));
      const canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(video.videoWidth * scale));
      canvas.height = Math.max(1, Math.round(video.videoHeight * scale));
      canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
      canvas.toBlob(done, "image/jpeg", 0.9);
    }, { once: true });
    video.src = url;
  });
}

// The same frame drawn by the server, for a video this browser cannot decode (AVI, MPEG, and
// HEVC in most browsers); null when the server cannot either, or the file is too large to send
// only for a preview.
async function serverFrame(file) {
  if (file.size > SERVER_FRAME_MAX_BYTES) return null;
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const response = await send("/stylize/preview/frame", { method: "POST", body: form });
    return response.ok ? await response.blob() : null;
  } catch {
    return null;
  }
}

function strengthPercent() {
  return Number($("strength-input").value);
}

function setPreviewText(text) {
  $("preview-text").textContent = text;
}

// The style and strength chosen, as form fields; null while the choice is incomplete.
function styleFields() {
  const style = selectedStyle();
  const form = new FormData();
  if (style === OWN_PAINTING) {
    const painting = $("painting-input").files[0];
    if (!painting) return null;
    form.append("style_image", painting, painting.name);
  } else if (style) {
    form.append("style", style);
  } else {
    return null;
  }
  form.append("strength", String(strengthPercent() / 100));
  return form;
}

function schedulePreview() {
  clearTimeout(preview.timer);
  preview.timer = setTimeout(refreshPreview, PREVIEW_DEBOUNCE_MS);
}

// Ask the server for the frame in the chosen style and strength; only the latest answer shows.
async function refreshPreview() {
  clearTimeout(preview.timer);
  const ticket = ++preview.ticket;
  const form = state.file ? styleFields() : null;
  $("preview-box").hidden = !form;
  if (!form) return;
  if (!preview.frame) {
    setPreviewText(preview.noFrame
      ? "No preview: this browser cannot show this video's format (the stylised video will play)."
      : "Preparing a preview…");
    return;
  }
  form.append("image", preview.frame, "frame.jpg");
  const percent = strengthPercent();
  setPreviewText(`Updating the preview at ${percent} %…`);
  try {
    const response = await send("/stylize/preview", { method: "POST", body: form });
    if (!response.ok) throw new Error(await problemOf(response));
    const picture = await response.blob();
    if (ticket !== preview.ticket) return; // a newer choice is on its way
    const image = $("preview-image");
    if (image.src.startsWith("blob:")) URL.revokeObjectURL(image.src);
    image.src = URL.createObjectURL(picture);
    image.hidden = false;
    setPreviewText(`One frame of your video at ${percent} % strength.`);
  } catch (error) {
    if (ticket === preview.ticket) setPreviewText(`No preview: ${error.message}`);
  }
}

function selectedStyle() {
  const checked = document.querySelector('input[name="style"]:checked');
  return checked ? checked.value : null;
}

function updateStylizeButton() {
  const style = selectedStyle();
  const paintingReady = style !== OWN_PAINTING || $("painting-input").files.length > 0;
  $("stylize-button").disabled = !(state.file && style && paintingReady) || Boolean(state.jobId);
  $("painting-row").hidden = style !== OWN_PAINTING;
}

function styleCard(value, label, thumbnailUrl) {
  const card = document.createElement("label");
  card.className = "style-card";
  const input = document.createElement("input");
  input.type = "radio";
  input.name = "style";
  input.value = value;
  input.addEventListener("change", updateStylizeButton);
  let picture;
  if (thumbnailUrl) {
    picture = document.createElement("img");
    picture.alt = "";
    mediaUrl(thumbnailUrl).then((url) => { picture.src = url; }, () => {});
  } else {
    picture = document.createElement("div");
    picture.className = "swatch";
  }
  const caption = document.createElement("span");
  caption.textContent = label;
  card.append(input, picture, caption);
  return card;
}

async function loadStyles() {
  const box = $("styles");
  try {
    const models = await request("/models");
    const cards = models.styles.map((s) => styleCard(s.name, s.display_name, s.thumbnail_url));
    if (models.custom_style) cards.push(styleCard(OWN_PAINTING, "Use my own painting", null));
    if (cards.length === 0) {
      const empty = document.createElement("p");
      empty.textContent = "No style is installed yet.";
      cards.push(empty);
    }
    box.replaceChildren(...cards);
  } catch (error) {
    showError(`The styles could not be loaded: ${error.message}`);
  }
}

function uploadForm() {
  const form = new FormData();
  form.append("file", state.file, state.file.name);
  return form;
}

async function classify() {
  showError("");
  const button = $("classify-button");
  button.disabled = true;
  button.textContent = "Classifying…";
  const list = $("predictions");
  list.replaceChildren();
  $("verdict").hidden = true;
  try {
    // The model picked under "Model" (teach.js fills it; empty: the default); at most 3 labels.
    const choice = $("model-select").selectedOptions[0];
    const topK = Math.min(3, Number(choice ? choice.dataset.labels : 3) || 3);
    const query = choice && choice.value ? `&model=${encodeURIComponent(choice.value)}` : "";
    const url = `/classify?top_k=${topK}${query}`;
    const result = await postWithProgress(url, uploadForm(), (fraction, sent, total) => {
      button.textContent = fraction < 1 ? uploadedText(sent, total) : "Classifying…";
    });
    if (!result.confident) {
      $("verdict").textContent =
        "Not confident: this looks like none of the actions the model knows. Its closest guesses:";
      $("verdict").hidden = false;
    }
    for (const prediction of result.predictions) {
      const item = document.createElement("li");
      const label = document.createElement("strong");
      label.textContent = prediction.label;
      const meter = document.createElement("meter");
      meter.min = 0;
      meter.max = 1;
      meter.value = prediction.score;
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = `${(prediction.score * 100).toFixed(1)} %`;
      item.append(label, meter, score);
      list.append(item);
    }
  } catch (error) {
    showError(`Classification failed: ${error.message}`);
  } finally {
    button.textContent = "Classify the action";
    button.disabled = !state.file;
  }
}

function setProgress(fraction, text) {
  $("progress-box").hidden = false;
  $("progress").value = fraction;
  $("progress-text").textContent = text;
}

function finishJob() {
  clearTimeout(state.polling);
  state.polling = null;
  state.jobId = null;
  $("cancel-button").hidden = true;
  updateStylizeButton();
}

async function stylize() {
  showError("");
  $("result-box").hidden = true;
  const form = uploadForm();
  for (const [name, value] of styleFields()) form.append(name, value);
  $("stylize-button").disabled = true;
  setProgress(0, "Uploading…");
  await submitStylizeJob(form, "The video");
}

// POST /stylize with `form`, then follow the job in the progress box (also Live's full render).
async function submitStylizeJob(form, what) {
  try {
    const job = await postWithProgress("/stylize", form, (fraction, sent, total) => {
      setProgress(0, fraction < 1 ? uploadedText(sent, total) : "Checking the video…");
    });
    const { job_id, status_url, result_url } = job;
    keepJob(KEPT_STYLIZE, { job_id, status_url, result_url });
    followJob(job);
  } catch (error) {
    $("progress-box").hidden = true;
    showError(`${what} could not be submitted: ${error.message}`);
    finishJob();
  }
}

// Jobs kept in this browser (the last stylize job; a teach job while it runs), so a reload, a
// closed tab or a phone that dropped the page in the background finds them again.
const KEPT_STYLIZE = "actionstyle-last-job";

function keepJob(key, job) {
  localStorage.setItem(key, JSON.stringify(job));
}

function keptJob(key) {
  try {
    const job = JSON.parse(localStorage.getItem(key));
    return job && typeof job.job_id === "string" && typeof job.status_url === "string"
      ? job
      : null;
  } catch (error) {
    return null;
  }
}

function forgetJob(key) {
  localStorage.removeItem(key);
}

// A kept job's status when the page loads: null, and forgotten, when it has expired, was
// cancelled, or is another API key's (404); a failed one is forgotten but returned, to say why
// once. A server that does not answer now keeps it, to be followed (and tried again) anyway.
async function keptJobStatus(key, job) {
  let read;
  try {
    read = await readJob(job.status_url);
  } catch (error) {
    return { progress: 0 };
  }
  if (read.gone || read.job.state === "cancelled") {
    forgetJob(key);
    return null;
  }
  if (read.job.state === "failed") forgetJob(key);
  return read.job;
}

function followJob(job) {
  state.jobId = job.job_id;
  $("cancel-button").hidden = false;
  updateStylizeButton();
  poll(job.status_url, job.result_url);
}

// On load: follow the last stylize job again, or show its result.
async function resumeKeptJob() {
  const job = keptJob(KEPT_STYLIZE);
  if (!job || typeof job.result_url !== "string") return;
  const status = await keptJobStatus(KEPT_STYLIZE, job);
  if (!status) return;
  setProgress(status.progress, "Picking up your last job…");
  followJob(job);
}

// A lost connection or a server that is restarting (no answer, 5xx, 429) is tried again, for
// up to POLL_GIVE_UP_MS: the job runs on meanwhile, and a phone may just have lost its signal.
const POLL_GIVE_UP_MS = 120_000;

// A job's status as {job}, or {gone: why} when it is no more (expired, another key's); no
// answer, a 5xx or a 429 throws, for the caller to try again.
async function readJob(url) {
  const response = await send(url);
  if (response.status >= 500 || response.status === 429) {
    throw new Error(await problemOf(response));
  }
  if (!response.ok) return { gone: await problemOf(response) };
  return { job: await response.json() };
}

// After a failed status request: `retry()` after a pause that grows with the time requests
// have failed (`follower.failingSince`), or `giveUp(message)` past POLL_GIVE_UP_MS.
function retryOrGiveUp(follower, error, showText, retry, giveUp) {
  const now = performance.now();
  follower.failingSince ??= now;
  const failingFor = now - follower.failingSince;
  if (failingFor > POLL_GIVE_UP_MS) {
    follower.failingSince = null;
    giveUp(`Lost track of the job: ${error.message}. Reload the page to find it again.`);
    return null;
  }
  showText("Lost contact with the server; trying again…");
  return setTimeout(retry, Math.min(5000, 500 + failingFor / 4));
}

// Each request is held by the service up to POLL_MS while the job runs (`wait`), so progress
// comes about twice a second and the end at once.
async function poll(statusUrl, resultUrl) {
  const asked = performance.now();
  let read;
  try {
    read = await readJob(`${statusUrl}?wait=${POLL_MS / 1000}`);
  } catch (error) {
    state.polling = retryOrGiveUp(
      state,
      error,
      (text) => { $("progress-text").textContent = text; },
      () => poll(statusUrl, resultUrl),
      (message) => { showError(message); finishJob(); },
    );
    return;
  }
  state.failingSince = null;
  if (read.gone) {
    showError(`Lost track of the job: ${read.gone}`);
    finishJob();
    return;
  }
  const job = read.job;
  if (job.state === "queued") {
    setProgress(0, waitingText(job));
  } else if (job.state === "running") {
    const eta = job.eta_s === null ? "" : ` — about ${formatSeconds(job.eta_s)} left`;
    const percent = Math.floor(job.progress * 100);
    setProgress(job.progress, `Processing video, this may take a while… ${percent} %${eta}`);
  } else if (job.state === "succeeded") {
    setProgress(1, "Style transfer complete!");
    showResult(resultUrl, job.result_name);
    finishJob();
    return;
  } else {
    setProgress(job.progress, job.state === "cancelled" ? "Cancelled." : "Failed.");
    if (job.state === "failed") showError(`Stylisation failed: ${job.error || "unknown error"}`);
    finishJob();
    return;
  }
  const rest = Math.max(0, POLL_MS - (performance.now() - asked));
  state.polling = setTimeout(() => poll(statusUrl, resultUrl), rest);
}

// A queued job's line, with how many jobs wait ahead of it when the service says.
function waitingText(job) {
  if (job.workers_online === 0) {
    return "Waiting: no worker is running right now; the job starts as soon as one does.";
  }
  const ahead = job.queue_position;
  if (!ahead) return "Waiting for a free worker…";
  return `Waiting for a free worker: ${ahead} ${ahead === 1 ? "job" : "jobs"} ahead of yours…`;
}

async function showResult(resultUrl, name) {
  const video = $("result-video");
  let url;
  try {
    url = await mediaUrl(resultUrl);
  } catch (error) {
    showError(`The stylised video could not be fetched: ${error.message}`);
    return;
  }
  video.src = url;
  $("download-link").href = url;
  $("download-link").download = name || "stylized.mp4";
  $("result-box").hidden = false;
  video.load();
}

async function cancel() {
  if (!state.jobId) return;
  try {
    await request(`/jobs/${encodeURIComponent(state.jobId)}`, { method: "DELETE" });
  } catch (error) {
    showError(`The job could not be cancelled: ${error.message}`);
  }
}

function wireDropZone() {
  const zone = $("drop-zone");
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("dragging"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    const files = event.dataTransfer.files;
    if (files.length !== 1) {
      showError("Drop one video file at a time.");
      return;
    }
    chooseFile(files[0]);
  });
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") $("file-input").click();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  wireDropZone();
  $("file-input").addEventListener("change", (event) => {
    if (event.target.files.length) chooseFile(event.target.files[0]);
  });
  $("painting-input").addEventListener("change", updateStylizeButton);
  $("painting-input").addEventListener("change", refreshPreview);
  $("styles").addEventListener("change", refreshPreview);
  $("strength-input").addEventListener("input", () => {
    $("strength-value").textContent = `${strengthPercent()} %`;
    schedulePreview();
  });
  $("classify-button").addEventListener("click", classify);
  $("stylize-button").addEventListener("click", stylize);
  $("cancel-button").addEventListener("click", cancel);
  $("api-key").value = localStorage.getItem(KEY_STORAGE) || "";
  $("api-key").addEventListener("change", (event) => {
    const key = event.target.value.trim();
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
    showError("");
    loadStyles();
  });
  $("result-video").addEventListener("error", () => {
    showError("The stylised video cannot be played in this browser; download it instead.");
  });
  loadStyles();
  resumeKeptJob();
});
