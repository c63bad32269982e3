// The web page (GET / with --index or an image model): one self-contained HTML file, no external scripts
// or fonts, so it works on a machine without internet. Two tabs: "search" calls /v1/collection,
// /v1/search, /v1/thumbnails/ID and /v1/search/heatmap; "generate" posts /v1/jobs, follows
// /v1/jobs/ID/events for the progress bar, cancels with DELETE and shows the image with its parameters.
// Every text from the catalogue or a job goes in as textContent.
#include <string_view>

namespace mmx::serve {

std::string_view web_page_html() {
  static constexpr std::string_view kPage = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mmx</title>
<link rel="icon" href="data:,">
<style>
  :root { --fg: #1d2330; --muted: #667085; --line: #d9dde5; --accent: #3b5bdb; --bg: #f6f7f9; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; gap: 1rem; align-items: baseline; padding: .8rem 1.2rem; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 1.2rem; margin: 0; }
  header #info { color: var(--muted); font-size: .9rem; }
  main { padding: 1rem 1.2rem; }
  form#search { display: flex; gap: .5rem; flex-wrap: wrap; }
  #q { flex: 1 1 24rem; padding: .55rem .7rem; font-size: 1rem; border: 1px solid var(--line); border-radius: 6px; }
  button, select, label.button { padding: .5rem .9rem; font-size: .95rem; border: 1px solid var(--line); border-radius: 6px; background: #fff; cursor: pointer; }
  button.primary { background: var(--accent); color: #fff; border-color: var(--accent); }
  #status { color: var(--muted); margin: .6rem 0; min-height: 1.2em; }
  #results { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: .8rem; }
  figure { margin: 0; background: #fff; border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
  figure img { display: block; width: 100%; height: 150px; object-fit: cover; cursor: pointer; background: #eef0f3; }
  figcaption { padding: .35rem .5rem; font-size: .8rem; display: flex; justify-content: space-between; gap: .4rem; align-items: center; }
  figcaption .name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; color: var(--muted); }
  figcaption .score { font-variant-numeric: tabular-nums; font-weight: 600; }
  figure.picked { outline: 3px solid var(--accent); }
  #drop { position: fixed; inset: 0; display: none; align-items: center; justify-content: center; background: rgba(59,91,219,.15);
          border: 4px dashed var(--accent); font-size: 1.6rem; color: var(--accent); pointer-events: none; }
  body.dragging #drop { display: flex; }
  section#lab { margin-top: 1.5rem; padding: 1rem; background: #fff; border: 1px solid var(--line); border-radius: 8px; }
  section#lab h2 { font-size: 1.05rem; margin: 0 0 .5rem; }
  #captions { width: 100%; min-height: 5.5rem; font: inherit; padding: .5rem; border: 1px solid var(--line); border-radius: 6px; }
  #heatmap svg { max-width: 100%; height: auto; }
  .error { color: #b42318; }
  nav#tabs { display: flex; gap: .3rem; }
  nav#tabs button { border-radius: 6px 6px 0 0; }
  nav#tabs button.active { background: var(--accent); color: #fff; border-color: var(--accent); }
  [hidden] { display: none !important; }
  form#generate { display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); gap: .6rem; align-items: end; }
  form#generate label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); gap: .2rem; }
  form#generate label.wide { grid-column: 1 / -1; }
  form#generate input, form#generate textarea, form#generate select { font: inherit; padding: .45rem .55rem; border: 1px solid var(--line); border-radius: 6px; color: var(--fg); }
  form#generate p.buttons { display: flex; gap: .5rem; margin: 0; }
  #gen-progress { width: 100%; height: 1rem; margin: .8rem 0 .3rem; }
  #gen-result { display: flex; gap: 1rem; flex-wrap: wrap; align-items: flex-start; margin-top: .6rem; }
  #gen-result img { width: 256px; max-width: 100%; image-rendering: pixelated; border: 1px solid var(--line); border-radius: 8px; background: #fff; }
  #gen-parameters { white-space: pre-wrap; font: .85rem/1.4 ui-monospace, monospace; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: .6rem; flex: 1 1 20rem; margin: 0; }
</style>
</head>
<body>
<header><h1>mmx</h1><nav id="tabs"><button type="button" id="tab-search" hidden>Search</button><button type="button" id="tab-generate" hidden>Generate</button></nav><span id="info">loading…</span></header>
<main id="search-view" hidden>
  <form id="search">
    <input id="q" type="search" placeholder="Describe a photo: “a cat on the sofa”, or 2:beach + sunset - people" autocomplete="off" autofocus>
    <select id="topk" title="results"><option>12</option><option selected>24</option><option>48</option><option>96</option></select>
    <button class="primary" type="submit">Search</button>
    <label class="button" title="search by an image file">By image… <input id="file" type="file" accept="image/*" hidden></label>
  </form>
  <div id="status">Type a description, click a photo to find similar ones, or drop an image anywhere on the page.</div>
  <div id="results"></div>
  <section id="lab">
    <h2>Compare picked photos with captions (the lab's heatmap)</h2>
    <p id="picked-note">Tick photos in the results (up to 16), write one caption per line, then compare.</p>
    <textarea id="captions" placeholder="Cat with paint&#10;rock statue&#10;frogs on leaf"></textarea>
    <p><button id="compare" type="button">Compare</button></p>
    <div id="heatmap"></div>
  </section>
</main>
<main id="generate-view" hidden>
  <form id="generate">
    <label class="wide"><span>Prompt (<code>&lt;lora:name:0.8&gt;</code> adds an adapter from the server's --lora-dir)</span>
      <textarea id="gen-prompt" rows="3" placeholder="An astronaut riding a green horse" required></textarea></label>
    <label class="wide">Negative prompt <input id="gen-negative" placeholder="blurry, low quality"></label>
    <label>Model <select id="gen-model"></select></label>
    <label>Sampler <select id="gen-sampler"><option value="">the model's</option><option>Euler</option><option>Euler a</option><option>DDIM</option>
      <option>DPM++ 2M</option><option>DPM++ 2M Karras</option><option>DPM++ 2M SDE</option><option>DPM++ 2M SDE Karras</option>
      <option>DPM++ SDE</option><option>DPM++ SDE Karras</option><option>Heun</option><option>LMS</option><option>LMS Karras</option>
      <option>UniPC</option><option>LCM</option><option>TCD</option></select></label>
    <label>Steps <input id="gen-steps" type="number" min="1" max="1000" placeholder="the model's"></label>
    <label>Guidance <input id="gen-guidance" type="number" min="0" max="100" step="0.5" placeholder="the model's"></label>
    <label>Seed <input id="gen-seed" type="number" min="0" placeholder="random"></label>
    <label>Size <input id="gen-size" placeholder="auto (the model's)" pattern="\d+x\d+|auto"></label>
    <p class="buttons"><button class="primary" type="submit" id="gen-go">Generate</button><button type="button" id="gen-cancel" disabled>Cancel</button></p>
  </form>
  <progress id="gen-progress" max="1" value="0"></progress>
  <div id="gen-status">Describe a picture and press Generate: the job waits in the server's queue, then every step shows here.</div>
  <div id="gen-result"><img id="gen-image" alt="" hidden><pre id="gen-parameters" hidden></pre></div>
</main>
<div id="drop">Drop an image to search by it</div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const picked = new Map();  // file id → name

async function api(path, body) {
  const response = await fetch(path, body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const json = await response.json();
  if (!response.ok) throw new Error(json.error ? json.error.message : response.statusText);
  return json;
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function render(result, what) {
  const grid = $("results");
  grid.replaceChildren();
  for (const hit of result.results) {
    const figure = document.createElement("figure");
    figure.dataset.id = hit.id;
    if (picked.has(hit.id)) figure.classList.add("picked");
    const img = document.createElement("img");
    img.src = hit.thumbnail;
    img.alt = hit.path;
    img.title = hit.path + "\nclick: photos like this one";
    img.loading = "lazy";
    img.addEventListener("click", () => search({file_id: hit.id}, "photos like " + baseName(hit.path)));
    const caption = document.createElement("figcaption");
    const pick = document.createElement("input");
    pick.type = "checkbox";
    pick.title = "pick for the heatmap";
    pick.checked = picked.has(hit.id);
    pick.addEventListener("change", () => {
      if (pick.checked) picked.set(hit.id, baseName(hit.path)); else picked.delete(hit.id);
      figure.classList.toggle("picked", pick.checked);
      $("picked-note").textContent = picked.size + " photo(s) picked: " + [...picked.values()].join(", ");
    });
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = baseName(hit.path);
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = hit.score.toFixed(3);
    caption.append(pick, name, score);
    figure.append(img, caption);
    grid.append(figure);
  }
  setStatus(`${result.results.length} results for ${what} in ${result.took_ms.toFixed(1)} ms ` +
            `(${result.method} over ${result.vectors} photos)`);
}

function baseName(path) { return path.split("/").pop(); }

async function search(query, what) {
  setStatus("searching " + what + "…");
  try {
    render(await api("/v1/search", {...query, top_k: Number($("topk").value)}), what);
  } catch (e) {
    setStatus(e.message, true);
  }
}

function searchImageFile(file) {
  const reader = new FileReader();
  reader.onload = () => search({image: reader.result}, "the image " + file.name);
  reader.readAsDataURL(file);
}

$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const q = $("q").value.trim();
  if (q) search({query: q}, "“" + q + "”");
});
$("file").addEventListener("change", () => { if ($("file").files[0]) searchImageFile($("file").files[0]); });
document.addEventListener("dragover", (event) => { event.preventDefault(); document.body.classList.add("dragging"); });
document.addEventListener("dragleave", (event) => { if (!event.relatedTarget) document.body.classList.remove("dragging"); });
document.addEventListener("drop", (event) => {
  event.preventDefault();
  document.body.classList.remove("dragging");
  const file = event.dataTransfer.files[0];
  if (file) searchImageFile(file);
});
$("compare").addEventListener("click", async () => {
  const captions = $("captions").value.split("\n").map((s) => s.trim()).filter((s) => s);
  if (!picked.size || !captions.length) { $("heatmap").textContent = "Pick at least one photo and write at least one caption."; return; }
  $("heatmap").textContent = "computing…";
  try {
    const result = await api("/v1/search/heatmap", {file_ids: [...picked.keys()], captions});
    $("heatmap").innerHTML = result.svg;  // drawn by the server's own renderer, texts escaped there
  } catch (e) {
    $("heatmap").textContent = e.message;
  }
});
// ---- tabs: "search" where the server has a collection, "generate" where it has an image model ----
function show(tab) {
  for (const name of ["search", "generate"]) {
    $(name + "-view").hidden = name !== tab;
    $("tab-" + name).classList.toggle("active", name === tab);
  }
  location.hash = tab;
}
$("tab-search").addEventListener("click", () => show("search"));
$("tab-generate").addEventListener("click", () => show("generate"));

// ---- generate: POST /v1/jobs, progress from /v1/jobs/ID/events, the image from GET /v1/jobs/ID ----
let job = null, events = null;
function genStatus(text, isError) {
  $("gen-status").textContent = text;
  $("gen-status").className = isError ? "error" : "";
}
function finishJob() {
  if (events) events.close();
  events = null;
  $("gen-go").disabled = false;
  $("gen-cancel").disabled = true;
}
async function showResult(id) {
  const j = await api("/v1/jobs/" + id);
  const item = j.data[0];
  $("gen-image").onload = () => {  // small images (test models) scaled up, large ones down, to 256–512 px
    $("gen-image").style.width = Math.max(256, Math.min(512, $("gen-image").naturalWidth)) + "px";
    $("gen-image").style.imageRendering = $("gen-image").naturalWidth < 256 ? "pixelated" : "auto";
  };
  $("gen-image").src = `data:image/${j.output_format};base64,${item.b64_json}`;
  $("gen-image").alt = item.parameters.split("\n")[0];
  $("gen-image").hidden = false;
  $("gen-parameters").textContent = item.parameters;
  $("gen-parameters").hidden = false;
  $("gen-progress").value = 1;
  genStatus(`done in ${j.seconds.toFixed(1)} s (${j.steps} steps, seed ${item.seed})`);
}
function progress(j) {
  if (j.status === "queued") genStatus(`queued: ${j.queue_position} job(s) ahead`);
  if (j.status === "running") {
    $("gen-progress").value = j.steps ? j.step / j.steps : 0;
    genStatus(`step ${j.step} of ${j.steps}` + (j.eta_seconds !== undefined ? ` · ${j.seconds_per_step.toFixed(2)} s/step · ETA ${Math.ceil(j.eta_seconds)} s` : ""));
  }
}
$("generate").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = {model: $("gen-model").value, prompt: $("gen-prompt").value};
  const number = (id) => $(id).value === "" ? undefined : Number($(id).value);
  if ($("gen-negative").value) body.negative_prompt = $("gen-negative").value;
  if ($("gen-sampler").value) body.sampler = $("gen-sampler").value;
  body.steps = number("gen-steps");
  body.guidance = number("gen-guidance");
  body.seed = number("gen-seed");
  if ($("gen-size").value && $("gen-size").value !== "auto") body.size = $("gen-size").value;
  $("gen-go").disabled = true;
  $("gen-progress").value = 0;
  try {
    job = await api("/v1/jobs", body);
  } catch (e) {
    genStatus(e.message, true);
    $("gen-go").disabled = false;
    return;
  }
  $("gen-cancel").disabled = false;
  progress(job);
  events = new EventSource(`/v1/jobs/${job.id}/events`);
  events.addEventListener("progress", (e) => progress(JSON.parse(e.data)));
  events.addEventListener("done", () => { const id = job.id; finishJob(); showResult(id).catch((e) => genStatus(e.message, true)); });
  events.addEventListener("failed", (e) => { finishJob(); genStatus(JSON.parse(e.data).error.message, true); });
  events.addEventListener("cancelled", (e) => { finishJob(); genStatus(`cancelled after ${JSON.parse(e.data).step} step(s)`); });
  events.onerror = () => { if (events && events.readyState === EventSource.CLOSED) { finishJob(); genStatus("lost the connection to the server", true); } };
});
$("gen-cancel").addEventListener("click", async () => {
  if (!job) return;
  $("gen-cancel").disabled = true;
  genStatus("cancelling at the next step…");
  try { await fetch("/v1/jobs/" + job.id, {method: "DELETE"}); } catch (e) { genStatus(e.message, true); }
});

(async () => {
  const [collection, models] = await Promise.all([api("/v1/collection").catch(() => null), api("/v1/models").catch(() => ({data: []}))]);
  const generators = models.data.filter((m) => m.type === "image");
  const info = [];
  if (collection) {
    $("tab-search").hidden = false;
    info.push(`${collection.vectors} photos · ${baseName(collection.model)}${collection.hnsw ? " · HNSW" : ""}`);
  }
  for (const m of generators) $("gen-model").append(new Option(m.id, m.id));
  if (generators.length) {
    $("tab-generate").hidden = false;
    info.push("image model" + (generators.length > 1 ? "s " : " ") + generators.map((m) => m.id).join(", "));
  }
  $("info").textContent = info.join(" · ");
  show(location.hash === "#generate" && generators.length || !collection ? "generate" : "search");
})().catch((e) => setStatus(e.message, true));
</script>
</body>
</html>
)html";
  return kPage;
}

}  // namespace mmx::serve
