// "Teach a new action": labels with clips dropped under each (or a folder), a teach job with its
// progress, the cross-validated accuracy, then the new model chosen for "Classify".
// Uses app.js's helpers ($, request, send, postWithProgress, uploadedText, problemOf, showError,
// formatSeconds, waitingText, readJob, retryOrGiveUp, keepJob, keptJob, forgetJob,
// keptJobStatus, VIDEO_SUFFIXES, POLL_MS). Server values are written with textContent or as
// properties, never as HTML.
"use strict";

const MIN_LABELS = 2;
const KEPT_TEACH = "actionstyle-teach-job"; // while it runs: a reload finds it again
const MIN_CLIPS = 3;
const teachState = { labels: [], jobId: null, polling: null, nextId: 0, failingSince: null };

function isVideoName(name) {
  const lower = name.toLowerCase();
  return VIDEO_SUFFIXES.some((suffix) => lower.endsWith(suffix));
}

// Every model the Classify button can use: the shipped ones, then the caller's own.
async function loadModelChoices(selected) {
  const select = $("model-select");
  let models;
  try {
    models = await request("/models");
  } catch (error) {
    return; // app.js already reports that /models cannot be read
  }
  const shipped = models.classifiers.filter((c) => c.family !== "custom");
  const custom = models.classifiers.filter((c) => c.family === "custom");
  const option = (entry, isDefault) => {
    const item = document.createElement("option");
    item.value = isDefault ? "" : entry.name;
    item.dataset.labels = String(entry.labels.length);
    item.textContent = isDefault ? `${entry.display_name} (default)` : entry.display_name;
    return item;
  };
  const items = shipped.map((c) => option(c, c.name === models.default_classifier));
  items.sort((a, b) => (a.value === "" ? -1 : b.value === "" ? 1 : 0));
  if (custom.length) {
    const group = document.createElement("optgroup");
    group.label = "Taught here";
    group.append(...custom.map((c) => option(c, false)));
    items.push(group);
  }
  const previous = selected ?? select.value;
  select.replaceChildren(...items);
  select.value = [...select.querySelectorAll("option")].some((o) => o.value === previous)
    ? previous
    : "";
}

function labelRow() {
  const id = teachState.nextId++;
  const entry = { id, files: [] };
  const row = document.createElement("div");
  row.className = "teach-label";
  row.dataset.label = String(id);
  const head = document.createElement("div");
  head.className = "teach-label-head";
  const name = document.createElement("input");
  name.type = "text";
  name.className = "label-name";
  name.maxLength = 64;
  name.placeholder = `label ${teachState.labels.length + 1}, e.g. waving`;
  name.setAttribute("aria-label", "Label name");
  name.addEventListener("input", updateTeachButton);
  const clips = document.createElement("input");
  clips.type = "file";
  clips.multiple = true;
  clips.className = "label-files";
  clips.accept = VIDEO_SUFFIXES.join(",") + ",video/*";
  clips.setAttribute("aria-label", "Clips of this label");
  clips.addEventListener("change", () => addClips(entry, [...clips.files]));
  const folder = document.createElement("input");
  folder.type = "file";
  folder.webkitdirectory = true;
  folder.className = "label-folder";
  folder.setAttribute("aria-label", "A folder of clips of this label");
  folder.addEventListener("change", () => addClips(entry, [...folder.files]));
  const count = document.createElement("span");
  count.className = "clip-count";
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "secondary";
  remove.textContent = "Remove";
  remove.addEventListener("click", () => {
    teachState.labels = teachState.labels.filter((other) => other !== entry);
    row.remove();
    updateTeachButton();
  });
  head.append(name, labelled("Clips", clips), labelled("or a folder", folder), count, remove);
  row.append(head);
  wireLabelDrop(row, entry);
  Object.assign(entry, { row, name, count });
  return entry;
}

// An input with its visible caption (a bare file input says only "Choose File").
function labelled(caption, input) {
  const label = document.createElement("label");
  label.className = "hint";
  label.append(`${caption} `, input);
  return label;
}

function addClips(entry, files) {
  const videos = files.filter((file) => isVideoName(file.name) && file.size > 0);
  const skipped = files.length - videos.length;
  entry.files.push(...videos);
  showError(skipped ? `${skipped} file(s) were not videos and were left out.` : "");
  updateTeachButton();
}

// Every file under a dropped folder (or the dropped files themselves).
async function droppedFiles(dataTransfer) {
  const entries = [...dataTransfer.items]
    .map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null))
    .filter(Boolean);
  if (!entries.length) return [...dataTransfer.files];
  const files = [];
  const walk = async (entry) => {
    if (entry.isFile) {
      files.push(await new Promise((resolve, reject) => entry.file(resolve, reject)));
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      let batch;
      do {
        batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        for (const child of batch) await walk(child);
      } while (batch.length);
    }
  };
  for (const entry of entries) await walk(entry);
  return files;
}

function wireLabelDrop(row, entry) {
  for (const name of ["dragenter", "dragover"]) {
    row.addEventListener(name, (event) => {
      event.preventDefault();
      row.classList.add("dragging");
    });
  }
  row.addEventListener("dragleave", () => row.classList.remove("dragging"));
  row.addEventListener("drop", async (event) => {
    event.preventDefault();
    row.classList.remove("dragging");
    addClips(entry, await droppedFiles(event.dataTransfer));
  });
}

function addLabel() {
  const entry = labelRow();
  teachState.labels.push(entry);
  $("teach-labels").append(entry.row);
  updateTeachButton();
  return entry;
}

function updateTeachButton() {
  for (const entry of teachState.labels) {
    const n = entry.files.length;
    const more = n < MIN_CLIPS ? ` (need ${MIN_CLIPS})` : "";
    entry.count.textContent = `${n} clip${n === 1 ? "" : "s"}${more}`;
  }
  const named = teachState.labels.filter((e) => e.name.value.trim());
  const ready =
    $("teach-name").value.trim() !== "" &&
    named.length >= MIN_LABELS &&
    named.every((e) => e.files.length >= MIN_CLIPS);
  $("teach-button").disabled = !ready || Boolean(teachState.jobId);
}

function setTeachProgress(fraction, text) {
  $("teach-progress-box").hidden = false;
  $("teach-progress").value = fraction;
  $("teach-progress-text").textContent = text;
}

function endTeachJob() {
  clearTimeout(teachState.polling);
  teachState.polling = null;
  teachState.jobId = null;
  forgetJob(KEPT_TEACH);
  $("teach-cancel-button").hidden = true;
  updateTeachButton();
}

async function teach() {
  showError("");
  $("teach-result").hidden = true;
  const form = new FormData();
  const name = $("teach-name").value.trim();
  form.append("name", name);
  for (const entry of teachState.labels) {
    const label = entry.name.value.trim();
    if (!label) continue;
    for (const file of entry.files) {
      form.append("files", file, file.name);
      form.append("labels", label);
    }
  }
  $("teach-button").disabled = true;
  setTeachProgress(0, "Uploading the clips…");
  try {
    const job = await postWithProgress("/classifiers", form, (fraction, sent, total) => {
      setTeachProgress(0, fraction < 1 ? uploadedText(sent, total) : "Checking the clips…");
    });
    const { job_id, status_url, classifier_url, classifier } = job;
    keepJob(KEPT_TEACH, { job_id, status_url, classifier_url, classifier });
    followTeachJob(job);
  } catch (error) {
    $("teach-progress-box").hidden = true;
    showError(`The clips could not be submitted: ${error.message}`);
    endTeachJob();
  }
}

function followTeachJob(job) {
  teachState.jobId = job.job_id;
  $("teach-cancel-button").hidden = false;
  updateTeachButton();
  pollTeach(job.status_url, job.classifier_url, job.classifier);
}

// On load: a teach job that was running when the page went away is followed again.
async function resumeTeachJob() {
  const job = keptJob(KEPT_TEACH);
  if (!job) return;
  const status = await keptJobStatus(KEPT_TEACH, job);
  if (!status) return;
  setTeachProgress(status.progress, `Picking up the teaching of “${job.classifier}”…`);
  followTeachJob(job);
}

async function pollTeach(statusUrl, classifierUrl, name) {
  let read;
  try {
    read = await readJob(statusUrl);
  } catch (error) {
    teachState.polling = retryOrGiveUp(
      teachState,
      error,
      (text) => { $("teach-progress-text").textContent = text; },
      () => pollTeach(statusUrl, classifierUrl, name),
      (message) => { showError(message); endTeachJob(); },
    );
    return;
  }
  teachState.failingSince = null;
  if (read.gone) {
    showError(`Lost track of the job: ${read.gone}`);
    endTeachJob();
    return;
  }
  const job = read.job;
  if (job.state === "queued") {
    setTeachProgress(0, waitingText(job));
  } else if (job.state === "running") {
    const clips = job.frames_total - 1;
    const text =
      job.frames_done < clips
        ? `Looking at the clips: ${job.frames_done} of ${clips}…`
        : "Training and cross-validating…";
    setTeachProgress(job.progress, text);
  } else if (job.state === "succeeded") {
    setTeachProgress(1, "Taught!");
    endTeachJob();
    await showTaught(classifierUrl, name);
    return;
  } else {
    setTeachProgress(job.progress, job.state === "cancelled" ? "Cancelled." : "Failed.");
    if (job.state === "failed") showError(`Teaching failed: ${job.error || "unknown error"}`);
    endTeachJob();
    return;
  }
  teachState.polling = setTimeout(() => pollTeach(statusUrl, classifierUrl, name), POLL_MS);
}

async function showTaught(classifierUrl, name) {
  const box = $("teach-result");
  try {
    const entry = await request(classifierUrl);
    const metrics = entry.metrics;
    const accuracy = (metrics.cross_validated_top1 * 100).toFixed(0);
    const clips = Object.values(metrics.clips_per_label).reduce((a, b) => a + b, 0);
    box.textContent =
      `“${name}” knows ${entry.labels.join(", ")}. Cross-validated accuracy: ${accuracy} % ` +
      `(${metrics.cv_folds} folds over ${clips} clips). ` +
      "It is now chosen under “Model”: pick a video above and classify it.";
  } catch (error) {
    box.textContent = `“${name}” was taught, but its measures are unreadable: ${error.message}`;
  }
  box.hidden = false;
  await loadModelChoices(name);
}

async function cancelTeach() {
  if (!teachState.jobId) return;
  try {
    await request(`/jobs/${encodeURIComponent(teachState.jobId)}`, { method: "DELETE" });
  } catch (error) {
    showError(`The job could not be cancelled: ${error.message}`);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  addLabel();
  addLabel();
  $("add-label-button").addEventListener("click", addLabel);
  $("teach-name").addEventListener("input", updateTeachButton);
  $("teach-button").addEventListener("click", teach);
  $("teach-cancel-button").addEventListener("click", cancelTeach);
  $("api-key").addEventListener("change", () => loadModelChoices());
  loadModelChoices();
  resumeTeachJob();
});
