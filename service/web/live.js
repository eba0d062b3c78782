// "Live": paint the camera in real time in this browser with onnxruntime-web, record the painted
// canvas as WebM, and send the raw recording to POST /stylize for the flow-smoothed version.
// Uses app.js's helpers ($, send, request, problemOf, showError, setProgress, poll, finishJob,
// state). Server values are written with textContent or as properties, never as HTML.
//
// Backend: WebGPU when navigator.gpu gives a hardware adapter; otherwise WebAssembly (SIMD),
// with one thread per core (at most 4) when the page is cross-origin isolated (the server sends
// COOP same-origin + COEP require-corp, which SharedArrayBuffer needs), else one thread.
// `?live-backend=wasm` and `?live-threads=N` force a choice (benchmarks/live_fps.py uses them).
//
// Detail: the network runs at the chosen size times a scale, and its picture is drawn on the
// canvas at the chosen size. "Auto" lowers the scale while the painting runs under
// LIVE_FLOOR_FPS and raises it again when there is room: a 320x240 network pass costs about
// 1.5 GMAC, a few hundred ms in WebAssembly on one core.
"use strict";

// onnxruntime-web, installed from the npm lock file by scripts/fetch_web_vendor.py: no CDN.
const LIVE_ORT_DIR = "/static/vendor/ort/";
// Light temporal smoothing: each painted frame is this much the new output, the rest the last.
const LIVE_BLEND = 0.7;
const LIVE_FPS_WINDOW_MS = 2000;
const LIVE_RECORD_FPS = 25;
const LIVE_MAX_THREADS = 4;
// Wait at most this long for a new camera frame before painting the current one again.
const LIVE_FRAME_WAIT_MS = 100;
const LIVE_FLOOR_FPS = 10;
const LIVE_ADAPTER_WAIT_MS = 3000;
const LIVE_SCALES = [1, 0.75, 0.5, 0.375, 0.25, 0.125];
// Measure this long at one scale before judging it.
const LIVE_ADAPT_MS = 2000;
const LIVE_WEBM_TYPES = ["video/webm;codecs=vp8", "video/webm;codecs=vp9", "video/webm"];

const liveState = {
  styles: new Map(), // name -> StyleSummary from GET /models
  sessions: new Map(), // name -> Promise<InferenceSession>
  ort: null,
  backend: null, // { name: "webgpu" | "wasm", label }
  stream: null,
  video: null,
  session: null,
  style: null,
  run: 0, // bumped on every start and stop: a loop whose number is stale ends
  previous: null, // the last painted output (Float32Array, NCHW), for the smoothing
  done: [], // when each recent frame was painted, for the fps readout
  frames: 0, // painted frames since start
  cameraFrames: 0, // camera frames seen since start
  input: null, // the 2D context the camera frame is scaled (and mirrored) into
  output: null, // the 2D context the network's picture is written into, before scaling up
  scale: 0, // index into LIVE_SCALES
  scaleSince: 0, // when the scale last changed
  framesAtScale: 0, // frames painted since
  recorders: null,
  rawRecording: null,
};

function liveParams() {
  return new URLSearchParams(window.location.search);
}

function liveStatus(text) {
  $("live-status-text").textContent = text;
}

async function liveChooseBackend() {
  const forced = liveParams().get("live-backend");
  if (forced !== "wasm" && navigator.gpu) {
    try {
      // Some drivers never answer: give up on WebGPU after LIVE_ADAPTER_WAIT_MS.
      const timeout = new Promise((resolve) => setTimeout(resolve, LIVE_ADAPTER_WAIT_MS, null));
      const adapter = await Promise.race([navigator.gpu.requestAdapter(), timeout]);
      // A fallback adapter is software (SwiftShader: ~0.05 fps here), far slower than WebAssembly.
      const software = adapter && (adapter.isFallbackAdapter || adapter.info?.isFallbackAdapter);
      if (adapter && (!software || forced === "webgpu")) {
        return { name: "webgpu", label: software ? "WebGPU (software adapter)" : "WebGPU" };
      }
    } catch (error) {
      // no adapter: WebAssembly below
    }
  }
  if (forced === "webgpu") throw new Error("WebGPU was asked for, but this browser has no adapter");
  const isolated = window.crossOriginIsolated === true;
  const wanted = Number(liveParams().get("live-threads")) || navigator.hardwareConcurrency || 1;
  const threads = isolated ? Math.max(1, Math.min(LIVE_MAX_THREADS, wanted)) : 1;
  const why = isolated ? "" : " (not cross-origin isolated)";
  const plural = threads === 1 ? "thread" : "threads";
  return { name: "wasm", threads, label: `WebAssembly SIMD, ${threads} ${plural}${why}` };
}

// onnxruntime-web, once per page: the WebGPU build only where WebGPU is used.
async function liveRuntime() {
  if (liveState.ort) return liveState.ort;
  const backend = await liveChooseBackend();
  const bundle = backend.name === "webgpu" ? "ort.webgpu.min.mjs" : "ort.wasm.min.mjs";
  const ort = await import(`${LIVE_ORT_DIR}${bundle}`);
  ort.env.wasm.wasmPaths = LIVE_ORT_DIR;
  ort.env.wasm.numThreads = backend.threads || 1;
  ort.env.logLevel = "error";
  liveState.backend = backend;
  liveState.ort = ort;
  $("live-backend").textContent = backend.label;
  return ort;
}

function liveHex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

// The style's network, fetched once (the browser caches it: its URL names its checksum), its
// sha256 checked before it runs.
function liveSession(style) {
  if (!liveState.sessions.has(style.name)) {
    const loading = (async () => {
      const ort = await liveRuntime();
      const response = await send(style.network.url);
      if (!response.ok) throw new Error(await problemOf(response));
      const bytes = await response.arrayBuffer();
      const digest = liveHex(await crypto.subtle.digest("SHA-256", bytes));
      if (digest !== style.network.sha256) {
        throw new Error(`the ${style.display_name} network does not match its checksum`);
      }
      return ort.InferenceSession.create(new Uint8Array(bytes), {
        executionProviders: [liveState.backend.name],
        graphOptimizationLevel: "all",
      });
    })();
    loading.catch(() => liveState.sessions.delete(style.name)); // a later try fetches again
    liveState.sessions.set(style.name, loading);
  }
  return liveState.sessions.get(style.name);
}

// The chosen size (the camera, the canvas and the recording).
function liveSize() {
  return $("live-size").value.split("x").map(Number);
}

// The size the network runs at: the chosen size times the detail scale, in its multiples.
function liveNetworkSize(style) {
  const multiple = style.network.size_multiple || 1;
  const scale = LIVE_SCALES[liveState.scale];
  return liveSize().map((side) => Math.max(multiple, side * scale - ((side * scale) % multiple)));
}

function liveSetScale(index) {
  liveState.scale = index;
  liveState.scaleSince = performance.now();
  liveState.framesAtScale = 0;
  liveState.done = [];
  liveState.previous = null;
  const [width, height] = liveSize().map((side) => Math.round(side * LIVE_SCALES[index]));
  $("live-detail-text").textContent = `network at ${width} × ${height}`;
}

// "Auto" detail. The cost grows with the pixels, the scale squared: under the floor, go straight
// to the largest scale predicted to keep it; above it, one step up when that step would still
// keep the floor with 15 % to spare.
function liveAdapt() {
  if ($("live-detail").value !== "auto") return;
  const now = performance.now();
  if (now - liveState.scaleSince < LIVE_ADAPT_MS || liveState.framesAtScale < 3) return;
  const fps = Number($("live-fps").dataset.fps);
  const index = liveState.scale;
  if (fps < LIVE_FLOOR_FPS && index < LIVE_SCALES.length - 1) {
    const fits = LIVE_SCALES[index] * Math.sqrt(fps / (LIVE_FLOOR_FPS * 1.15));
    const next = LIVE_SCALES.findIndex((scale, i) => i > index && scale <= fits);
    liveSetScale(next === -1 ? LIVE_SCALES.length - 1 : next);
  } else if (index > 0) {
    const cost = (LIVE_SCALES[index - 1] / LIVE_SCALES[index]) ** 2;
    if (fps / cost > LIVE_FLOOR_FPS * 1.15) liveSetScale(index - 1);
    else liveState.scaleSince = now; // judged: stay, look again later
  }
}

function liveInputTensor(ort, style) {
  const [width, height] = liveNetworkSize(style);
  const context = liveState.input;
  if (context.canvas.width !== width || context.canvas.height !== height) {
    context.canvas.width = width;
    context.canvas.height = height;
    liveState.previous = null;
  }
  const mirror = $("live-mirror").checked;
  context.setTransform(mirror ? -1 : 1, 0, 0, 1, mirror ? width : 0, 0);
  context.drawImage(liveState.video, 0, 0, width, height);
  const rgba = context.getImageData(0, 0, width, height).data;
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  for (let i = 0, p = 0; p < plane; i += 4, p += 1) {
    data[p] = rgba[i] / 255;
    data[p + plane] = rgba[i + 1] / 255;
    data[p + 2 * plane] = rgba[i + 2] / 255;
  }
  return new ort.Tensor("float32", data, [1, 3, height, width]);
}

// Blend with the previous output (light smoothing against flicker) and draw it on the canvas at
// the chosen size.
function livePaint(output) {
  const [, , height, width] = output.dims;
  const fresh = output.data;
  let smooth = liveState.previous;
  if (!smooth || smooth.length !== fresh.length) {
    smooth = Float32Array.from(fresh);
  } else {
    for (let i = 0; i < fresh.length; i += 1) {
      smooth[i] = LIVE_BLEND * fresh[i] + (1 - LIVE_BLEND) * smooth[i];
    }
  }
  liveState.previous = smooth;
  const context = liveState.output;
  if (context.canvas.width !== width || context.canvas.height !== height) {
    context.canvas.width = width;
    context.canvas.height = height;
  }
  const picture = context.createImageData(width, height);
  const pixels = picture.data;
  const plane = width * height;
  for (let p = 0, i = 0; p < plane; p += 1, i += 4) {
    pixels[i] = smooth[p] * 255; // Uint8ClampedArray clamps and rounds
    pixels[i + 1] = smooth[p + plane] * 255;
    pixels[i + 2] = smooth[p + 2 * plane] * 255;
    pixels[i + 3] = 255;
  }
  context.putImageData(picture, 0, 0);
  const canvas = $("live-canvas");
  const [shownWidth, shownHeight] = liveSize();
  if (canvas.width !== shownWidth || canvas.height !== shownHeight) {
    canvas.width = shownWidth;
    canvas.height = shownHeight;
  }
  canvas.getContext("2d").drawImage(context.canvas, 0, 0, shownWidth, shownHeight);
}

function liveCountFrame() {
  const now = performance.now();
  liveState.frames += 1;
  liveState.framesAtScale += 1;
  liveState.done.push(now);
  while (liveState.done.length > 2 && now - liveState.done[0] > LIVE_FPS_WINDOW_MS) {
    liveState.done.shift();
  }
  const span = now - liveState.done[0];
  const fps = span > 0 ? ((liveState.done.length - 1) * 1000) / span : 0;
  const readout = $("live-fps");
  readout.textContent = `${fps.toFixed(1)} fps`;
  readout.dataset.fps = fps.toFixed(2);
  $("live-canvas").dataset.frames = String(liveState.frames);
}

// Resolves at the next camera frame, or after LIVE_FRAME_WAIT_MS if none comes.
function liveNextCameraFrame(seen) {
  return new Promise((resolve) => {
    if (liveState.cameraFrames !== seen) return resolve();
    const started = performance.now();
    const check = () => {
      const waited = performance.now() - started;
      if (liveState.cameraFrames !== seen || waited > LIVE_FRAME_WAIT_MS) resolve();
      else setTimeout(check, 2);
    };
    check();
  });
}

async function liveLoop(run) {
  let painted = -1; // the camera frame painted last
  while (liveState.run === run) {
    // A frame the camera has not replaced yet would be painted twice: wait for a new one.
    if (painted === liveState.cameraFrames) await liveNextCameraFrame(painted);
    painted = liveState.cameraFrames;
    const style = liveState.style;
    const session = liveState.session;
    try {
      const ort = liveState.ort;
      const input = liveInputTensor(ort, style);
      const outputs = await session.run({ [style.network.input_name]: input });
      if (liveState.run !== run) return;
      if (session === liveState.session) {
        livePaint(outputs[style.network.output_name]);
        liveCountFrame();
        liveAdapt();
      }
    } catch (error) {
      if (liveState.run === run) {
        showError(`Live painting stopped: ${error.message}`);
        liveStop();
      }
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 0)); // let the page handle events
  }
}

// Count the camera's frames, so the loop paints each at most once.
function liveWatchCamera(video, run) {
  if (!video.requestVideoFrameCallback) {
    const tick = () => {
      if (liveState.run !== run) return;
      liveState.cameraFrames += 1;
      setTimeout(tick, 1000 / 30);
    };
    tick();
    return;
  }
  const onFrame = () => {
    if (liveState.run !== run) return;
    liveState.cameraFrames += 1;
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

async function liveUseStyle(name) {
  const style = liveState.styles.get(name);
  if (!style) return;
  liveStatus(`Loading ${style.display_name}…`);
  const session = await liveSession(style);
  if ($("live-style").value !== name) return; // another style was picked meanwhile
  liveState.previous = null; // a new style starts clean, not blended with the old one
  liveState.style = style;
  liveState.session = session;
  liveStatus(`Painting in ${style.display_name}.`);
}

async function liveStart() {
  showError("");
  const button = $("live-start");
  button.disabled = true;
  const run = ++liveState.run;
  try {
    const name = $("live-style").value;
    const [width, height] = liveSize();
    liveStatus("Loading the painter and asking for the camera…");
    const [, stream] = await Promise.all([
      liveUseStyle(name),
      navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: width }, height: { ideal: height }, facingMode: "user" },
        audio: false,
      }),
    ]);
    if (liveState.run !== run) {
      stream.getTracks().forEach((track) => track.stop());
      return;
    }
    liveState.stream = stream;
    if (!liveState.session) await liveUseStyle($("live-style").value);
    const video = $("live-raw");
    liveState.video = video;
    video.srcObject = stream;
    await video.play();
    liveState.frames = 0;
    liveState.cameraFrames = 0;
    liveSetDetail();
    $("live-stage").hidden = false;
    $("live-stop").hidden = false;
    $("live-record").disabled = !window.MediaRecorder;
    liveWatchCamera(video, run);
    liveLoop(run);
  } catch (error) {
    if (liveState.run === run) {
      const denied = error.name === "NotAllowedError";
      const reason = denied ? "the camera was not allowed" : error.message;
      showError(`Live mode could not start: ${reason}`);
      liveStop();
    }
  } finally {
    button.disabled = Boolean(liveState.stream);
  }
}

// Stop painting and release the camera (the browser's camera light goes off).
function liveStop() {
  liveState.run += 1;
  if (liveState.recorders) liveStopRecording();
  if (liveState.stream) liveState.stream.getTracks().forEach((track) => track.stop());
  liveState.stream = null;
  $("live-raw").srcObject = null;
  $("live-stop").hidden = true;
  $("live-start").disabled = false;
  $("live-record").disabled = true;
  $("live-fps").textContent = "stopped";
  $("live-fps").dataset.fps = "0";
  liveStatus("The camera is released.");
}

function liveRecorder(stream, type, onBlob) {
  const chunks = [];
  const recorder = new MediaRecorder(stream, { mimeType: type });
  recorder.addEventListener("dataavailable", (event) => {
    if (event.data.size) chunks.push(event.data);
  });
  recorder.addEventListener("stop", () => onBlob(new Blob(chunks, { type: "video/webm" })));
  recorder.start(1000);
  return recorder;
}

// Two recordings at once: the painted canvas (to download) and the raw camera (for the server).
function liveStartRecording() {
  const type = LIVE_WEBM_TYPES.find((t) => MediaRecorder.isTypeSupported(t));
  if (!type) {
    showError("This browser cannot record WebM.");
    return;
  }
  const link = $("live-download");
  if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
  link.hidden = true;
  $("live-render").hidden = true;
  liveState.rawRecording = null;
  const painted = liveRecorder($("live-canvas").captureStream(LIVE_RECORD_FPS), type, (blob) => {
    link.href = URL.createObjectURL(blob);
    link.hidden = false;
  });
  const raw = liveRecorder(liveState.stream, type, (blob) => {
    liveState.rawRecording = blob;
    $("live-render").hidden = false;
  });
  liveState.recorders = [painted, raw];
  $("live-record").textContent = "Stop recording";
  liveStatus("Recording…");
}

function liveStopRecording() {
  for (const recorder of liveState.recorders) {
    if (recorder.state !== "inactive") recorder.stop();
  }
  liveState.recorders = null;
  $("live-record").textContent = "Record";
}

function liveToggleRecording() {
  if (liveState.recorders) liveStopRecording();
  else if (liveState.stream) liveStartRecording();
}

// The raw recording through the usual stylize job (flow smoothing, full size): app.js shows its
// progress and the result.
async function liveRender() {
  if (!liveState.rawRecording || !liveState.style) return;
  if (state.jobId) {
    showError("A stylize job is already running: wait for it, or cancel it, first.");
    return;
  }
  showError("");
  const form = new FormData();
  form.append("file", liveState.rawRecording, "live-camera.webm");
  form.append("style", liveState.style.name);
  form.append("strength", "1");
  $("live-render").disabled = true;
  $("result-box").hidden = true;
  setProgress(0, "Uploading the camera recording…");
  $("progress-box").scrollIntoView({ block: "nearest" });
  try {
    await submitStylizeJob(form, "The recording");
  } finally {
    $("live-render").disabled = false;
  }
}

// The detail chosen: a fixed scale, or "auto" starting at full detail.
function liveSetDetail() {
  const chosen = $("live-detail").value;
  const index = chosen === "auto" ? 0 : LIVE_SCALES.indexOf(Number(chosen));
  liveSetScale(Math.max(0, index));
}

async function liveLoadStyles() {
  let models;
  try {
    models = await request("/models");
  } catch (error) {
    return; // app.js already reports that /models cannot be read
  }
  const select = $("live-style");
  const previous = select.value;
  liveState.styles = new Map(models.styles.map((style) => [style.name, style]));
  select.replaceChildren(
    ...models.styles.map((style) => {
      const option = document.createElement("option");
      option.value = style.name;
      option.textContent = style.display_name;
      return option;
    }),
  );
  if (liveState.styles.has(previous)) select.value = previous;
  $("live-start").disabled = liveState.styles.size === 0 || Boolean(liveState.stream);
}

document.addEventListener("DOMContentLoaded", () => {
  if (!window.isSecureContext || !navigator.mediaDevices) {
    liveStatus("Live needs the page over https (or on localhost): browsers keep the camera from "
      + "other pages.");
    return;
  }
  liveState.input = document.createElement("canvas").getContext("2d", { willReadFrequently: true });
  liveState.output = document.createElement("canvas").getContext("2d");
  const detail = liveParams().get("live-detail");
  if (detail && [...$("live-detail").options].some((o) => o.value === detail)) {
    $("live-detail").value = detail;
  }
  $("live-start").addEventListener("click", liveStart);
  $("live-stop").addEventListener("click", liveStop);
  $("live-record").addEventListener("click", liveToggleRecording);
  $("live-render").addEventListener("click", liveRender);
  $("live-style").addEventListener("change", (event) => {
    if (!liveState.stream) return;
    liveUseStyle(event.target.value).catch((error) => {
      showError(`That style could not be loaded: ${error.message}`);
    });
  });
  $("live-mirror").addEventListener("change", (event) => {
    $("live-raw").classList.toggle("mirrored", event.target.checked);
    liveState.previous = null;
  });
  $("live-size").addEventListener("change", () => {
    liveState.previous = null;
  });
  $("live-detail").addEventListener("change", liveSetDetail);
  $("api-key").addEventListener("change", liveLoadStyles);
  liveLoadStyles();
});
