// The collection's web page (GET / with --index): one self-contained HTML file, no external scripts or
// fonts, so it works on a machine without internet. It calls /v1/collection, /v1/search,
// /v1/thumbnails/ID and /v1/search/heatmap; every text from the catalogue goes in as textContent.
#include <string_view>

namespace mmx::serve {

std::string_view web_page_html() {
  static constexpr std::string_view kPage = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mmx · photo search</title>
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
</style>
</head>
<body>
<header><h1>mmx</h1><span id="info">loading…</span></header>
<main>
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
api("/v1/collection").then((c) => {
  $("info").textContent = `${c.vectors} photos · ${baseName(c.model)}${c.hnsw ? " · HNSW" : ""}`;
}).catch((e) => setStatus(e.message, true));
</script>
</body>
</html>
)html";
  return kPage;
}

}  // namespace mmx::serve
