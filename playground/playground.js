// The playground: one form that POSTs the chosen image and options to /remove-background,
// then shows the result beside the original with the numbers from the response headers.
// Plain JS, no build step, nothing loaded from another host; no inline handlers (CSP-ready).

const API_ROOT = new URL("../", document.baseURI); // the service root, also behind a prefix
const KEY_STORE = "bg-remover-api-key"; // sessionStorage only: gone when the tab closes
// Sent as typed when not empty (and not disabled); the other controls are read one by one.
const TEXT_OPTIONS = [
  "preset", "format", "quality", "max_width", "max_height",
  "canvas", "position", "shadow", "shadow_opacity", "edges",
];

const $ = (id) => document.getElementById(id);
const form = $("form");
const fileInput = $("file");
const keyInput = $("api-key");
const urls = { original: null, result: null };
// From GET /presets: name -> {format, quality, max_width, max_height}, some with
// bg_color, canvas and scale.
let presets = {};

// --- small helpers ---------------------------------------------------------------------

function apiHeaders() {
  const key = keyInput.value.trim();
  return key ? { "X-API-Key": key } : {};
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function formatBytes(n) {
  const exact = `${n.toLocaleString("en-US")} bytes`;
  if (n < 1024) return exact;
  const [value, unit] = n < 1024 * 1024 ? [n / 1024, "KiB"] : [n / 1024 / 1024, "MiB"];
  return `${value.toFixed(1)} ${unit} (${exact})`;
}

// Python's round(): halves go to the even neighbour, as the contract computes the ratio.
function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function compressionText(size, original) {
  if (!original) return "–";
  const ratio = roundHalfEven((1 - size / original) * 100);
  const how = ratio >= 0 ? "smaller than the original" : "larger than the original";
  return `${ratio}% (${how})`;
}

function waitText(retryAfter) {
  const seconds = Number.parseInt(retryAfter ?? "", 10);
  if (!Number.isFinite(seconds) || seconds < 0) return "a little while";
  return seconds < 60 ? plural(seconds, "second") : plural(Math.ceil(seconds / 60), "minute");
}

function clockTime(unixSeconds) {
  return new Date(unixSeconds * 1000).toLocaleTimeString([], {
    hour: "2-digit", minute: "2-digit",
  });
}

// RFC 6266: prefer filename*=UTF-8''..., else filename="...".
function filenameFrom(header, fallback) {
  const star = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header ?? "");
  if (star) {
    try { return decodeURIComponent(star[1].trim()); } catch { /* use the ASCII name */ }
  }
  const plain = /filename\s*=\s*(?:"([^"]*)"|([^;]+))/i.exec(header ?? "");
  const name = plain ? (plain[1] ?? plain[2]).trim() : "";
  return name.replace(/[\\/]/g, "_") || fallback;
}

function setUrl(which, img, blob) {
  if (urls[which]) URL.revokeObjectURL(urls[which]);
  urls[which] = blob ? URL.createObjectURL(blob) : null;
  if (urls[which]) img.src = urls[which]; else img.removeAttribute("src");
  img.hidden = !blob;
  return urls[which];
}

// --- messages --------------------------------------------------------------------------

function showError({ title, details = "", solution = "" }) {
  const box = $("error");
  const line = (text, tag) => Object.assign(document.createElement(tag), { textContent: text });
  box.replaceChildren(line(title, "strong"));
  for (const text of [details, solution]) {
    if (text && text !== title) box.append(line(text, "p"));
  }
  box.hidden = false;
  $("status").textContent = "";
}

function clearError() {
  $("error").hidden = true;
  $("error").replaceChildren();
}

// An error response as sentences: the JSON's error/details/solution, never the raw JSON.
async function describeError(response) {
  let body = {};
  try { body = await response.json(); } catch { /* not JSON: use the status alone */ }
  const text = (value) => (typeof value === "string" ? value : "");
  const retry = response.headers.get("Retry-After");
  const hasKey = Boolean(keyInput.value.trim());
  const titles = {
    401: hasKey
      ? "The API key was not accepted. Check it in the “API key” field and try again."
      : "This server needs an API key. Type your key in the “API key” field and try again.",
    413: "The image is too large for this server.",
    415: "That file is not an image the service can read.",
    429: `You have reached the rate limit. Try again in ${waitText(retry)}.`,
    503: `The service is busy or not ready yet. Try again in ${waitText(retry)}.`,
  };
  return {
    title: titles[response.status] || text(body.error)
      || `The server refused the request (HTTP ${response.status}).`,
    details: text(body.details),
    solution: response.status === 429 ? "" : text(body.solution),
  };
}

function showRateLimit(headers) {
  const limit = headers.get("X-RateLimit-Limit");
  if (limit === null) return;
  const remaining = headers.get("X-RateLimit-Remaining");
  const reset = Number(headers.get("X-RateLimit-Reset"));
  const when = reset > 0 ? `; the budget resets at ${clockTime(reset)}` : "";
  $("rate").textContent = `Rate limit: ${remaining} of ${limit} requests left${when}.`;
  $("rate").hidden = false;
}

// --- presets ---------------------------------------------------------------------------

function describePreset(options) {
  const box = options.max_width || options.max_height
    ? `fits ${options.max_width ?? "any"}×${options.max_height ?? "any"}`
    : "original size";
  const parts = [options.format, `quality ${options.quality}`];
  if (options.canvas) parts.push(`${options.canvas} canvas at ${options.scale ?? "100%"}`);
  else parts.push(box);
  if (options.bg_color) parts.push(`on ${options.bg_color}`);
  return parts.join(", ");
}

async function loadPresets() {
  const select = $("preset");
  const hint = $("preset-hint");
  let response;
  try {
    response = await fetch(new URL("presets", API_ROOT), { headers: apiHeaders() });
  } catch {
    hint.textContent = "The presets could not be loaded: the server did not answer.";
    return;
  }
  if (!response.ok) {
    hint.textContent = response.status === 401
      ? "Type your API key to load the presets."
      : `The presets could not be loaded (HTTP ${response.status}).`;
    return;
  }
  presets = await response.json();
  const chosen = select.value;
  select.replaceChildren(new Option("None", ""));
  for (const [name, options] of Object.entries(presets)) {
    select.add(new Option(`${name} — ${describePreset(options)}`, name));
  }
  select.value = chosen in presets ? chosen : "";
  hint.textContent = "";
  showDefaults();
}

// A select's empty choice names what the server will use instead.
function nameDefault(id, fromPreset, fallback) {
  $(id).options[0].textContent =
    fromPreset ? `From the preset (${fromPreset})` : `Default (${fallback})`;
}

// Empty fields show, as placeholders, what the server will use for them.
function showDefaults() {
  const preset = presets[$("preset").value];
  const format = $("format").value || preset?.format || "PNG";
  nameDefault("format", preset?.format, "PNG");
  $("quality").placeholder = preset?.quality ?? (format === "PNG" ? 100 : 80);
  $("max_width").placeholder = preset?.max_width ?? "none";
  $("max_height").placeholder = preset?.max_height ?? "none";
  // A canvas or a scale moves the subject: centred unless placed, 100% of a canvas unless scaled.
  const canvas = $("canvas").value.trim() || preset?.canvas;
  const scale = $("scale").value.trim() || preset?.scale;
  $("canvas").placeholder = preset?.canvas ?? "none";
  $("scale").placeholder = preset?.scale?.replace("%", "") ?? (canvas ? 100 : "original");
  $("position").placeholder = canvas || scale ? "center" : "original";
  nameDefault("shadow", preset?.shadow, "none");
  nameDefault("edges", preset?.edges, "keep");
}

// --- the form --------------------------------------------------------------------------

function buildRequest(file) {
  const data = new FormData();
  data.append("file", file, file.name);
  for (const id of TEXT_OPTIONS) {
    const value = $(id).value.trim();
    if (value && !$(id).disabled) data.append(id, value);
  }
  const scale = $("scale").value.trim();
  if (scale) data.append("scale", `${scale}%`);
  // The radios let one background through: the API refuses a colour with an image.
  if ($("bg-colour").checked) data.append("bg_color", $("bg_color").value);
  const background = $("bg_image").files[0];
  if ($("bg-picture").checked && background) {
    data.append("bg_image", background, background.name);
  }
  if ($("crop").checked) {
    data.append("crop", "true");
    const margin = $("crop_margin").value.trim();
    if (margin) data.append("crop_margin", margin);
  }
  if ($("only_mask").checked) data.append("only_mask", "true");
  return data;
}

const CACHE_TEXT = {
  hit: "hit: this exact result was made before",
  mask: "mask: the photo was seen before, the model did not run again",
  miss: "miss: made from scratch",
};

// "decode;dur=5.1, inference;dur=190.2, total;dur=260.0, cache;desc=miss" ->
// {stages: [["decode", 5.1], ["inference", 190.2]], cache: "miss"} (total is shown apart).
function parseServerTiming(header) {
  const stages = [];
  let cache = null;
  for (const entry of (header ?? "").split(",")) {
    const [name, ...params] = entry.trim().split(";");
    const values = Object.fromEntries(params.map((param) => param.trim().split("=")));
    if (name === "cache") cache = values.desc ?? null;
    else if (name && name !== "total" && values.dur !== undefined) {
      stages.push([name, Number(values.dur)]);
    }
  }
  return { stages, cache };
}

function showResult(blob, headers, elapsedMs) {
  const number = (name, fallback) => Number(headers.get(name) ?? fallback);
  const size = number("X-Optimized-Size", blob.size);
  const original = number("X-Original-Size", fileInput.files[0]?.size ?? 0);
  const url = setUrl("result", $("result-image"), blob);
  $("stat-size").textContent = formatBytes(size);
  $("stat-original").textContent = formatBytes(original);
  $("stat-ratio").textContent = compressionText(size, original);
  $("stat-dimensions").textContent =
    `${headers.get("X-Image-Width")} × ${headers.get("X-Image-Height")} px`;
  $("stat-time").textContent =
    `${headers.get("X-Processing-Time-Ms")} ms on the server, ${Math.round(elapsedMs)} ms in all`;
  const timing = parseServerTiming(headers.get("Server-Timing"));
  $("stat-stages").textContent = timing.stages
    .map(([name, ms]) => `${name} ${Math.round(ms)} ms`).join(" · ") || "–";
  $("stat-cache").textContent = CACHE_TEXT[headers.get("X-Cache") ?? timing.cache] ?? "–";
  $("stats").hidden = false;

  const extension = (blob.type.split("/")[1] || "png").replace("jpeg", "jpg");
  const name = filenameFrom(headers.get("Content-Disposition"), `image_no_bg.${extension}`);
  const link = $("download");
  link.href = url;
  link.download = name;
  link.textContent = `Download ${name}`;
  link.hidden = false;
}

function clearResult() {
  setUrl("result", $("result-image"), null);
  $("stats").hidden = true;
  $("download").hidden = true;
}

async function removeBackground(event) {
  event.preventDefault();
  clearError();
  const file = fileInput.files[0];
  if (!file) {
    showError({ title: "Choose an image first: drop it on the page or pick a file." });
    fileInput.focus();
    return;
  }
  if ($("bg-picture").checked && !$("bg_image").files.length) {
    showError({ title: "Choose a background image, or another background." });
    $("bg_image").focus();
    return;
  }
  if (!form.checkValidity()) {
    form.reportValidity();
    return;
  }
  clearResult();
  const button = $("submit");
  button.disabled = true;
  form.setAttribute("aria-busy", "true");
  $("status").textContent = "Removing the background…";
  const started = performance.now();
  try {
    const response = await fetch(new URL("remove-background", API_ROOT), {
      method: "POST", body: buildRequest(file), headers: apiHeaders(),
    });
    showRateLimit(response.headers);
    if (response.ok) {
      // arrayBuffer() then a Blob, rather than blob(): the same bytes, but Chromium then keeps
      // the body visible to its devtools (and so to the browser tests).
      const type = response.headers.get("Content-Type") ?? "";
      const blob = new Blob([await response.arrayBuffer()], { type });
      showResult(blob, response.headers, performance.now() - started);
      $("status").textContent = "Done.";
    } else {
      showError(await describeError(response));
    }
  } catch {
    showError({
      title: "Could not reach the service.",
      details: "Check your network connection and that the server is running, then try again.",
    });
  } finally {
    button.disabled = false;
    form.removeAttribute("aria-busy");
  }
}

function chooseFile() {
  const file = fileInput.files[0];
  clearError();
  clearResult();
  $("drop-text").textContent = file ? `${file.name} (${formatBytes(file.size)})` : "";
  setUrl("original", $("original-image"), file ?? null);
}

// --- wiring ----------------------------------------------------------------------------

function syncDependentFields() {
  $("bg_color").disabled = !$("bg-colour").checked;
  // The file stays enabled (choosing one is how the image is picked), shown as unused.
  $("bg_image").classList.toggle("unused", !$("bg-picture").checked);
  $("crop_margin").disabled = !$("crop").checked;
  $("shadow_opacity").disabled = $("shadow").value !== "drop";
}

// A background image chosen is the background: the colour is unticked, never sent with it.
function chooseBackground() {
  if ($("bg_image").files.length) $("bg-picture").checked = true;
  syncDependentFields();
}

function wireDropZone() {
  const zone = $("drop");
  // A file dropped anywhere else must not make the browser leave the page to open it.
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (event) => event.preventDefault());
  }
  zone.addEventListener("dragover", () => zone.classList.add("over"));
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    zone.classList.remove("over");
    if (!event.dataTransfer?.files.length) return;
    fileInput.files = event.dataTransfer.files;
    chooseFile();
  });
}

function wireApiKey() {
  try { keyInput.value = sessionStorage.getItem(KEY_STORE) ?? ""; } catch { /* storage off */ }
  keyInput.addEventListener("input", () => {
    try {
      if (keyInput.value) sessionStorage.setItem(KEY_STORE, keyInput.value);
      else sessionStorage.removeItem(KEY_STORE);
    } catch { /* storage off: the key stays in the field only */ }
  });
  keyInput.addEventListener("change", loadPresets);
}

form.addEventListener("submit", removeBackground);
fileInput.addEventListener("change", chooseFile);
$("original-image").addEventListener("error", () => { $("original-image").hidden = true; });
for (const id of ["bg-transparent", "bg-colour", "bg-picture", "crop", "shadow"]) {
  $(id).addEventListener("change", syncDependentFields);
}
$("bg_image").addEventListener("change", chooseBackground);
for (const id of ["preset", "format"]) $(id).addEventListener("change", showDefaults);
for (const id of ["canvas", "scale"]) $(id).addEventListener("input", showDefaults);
wireDropZone();
wireApiKey();
syncDependentFields();
showDefaults();
loadPresets();
