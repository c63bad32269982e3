// The collection's web page in a real headless Chromium (puppeteer-core driving Debian's chromium over
// the DevTools protocol), as a person uses it: type a query and see ranked thumbnails, click a result to
// search by it, pick a file and drop an image to search by them, pick photos and captions for the lab's
// heatmap; then in the generate tab write a prompt, watch the progress bar, see the image and its
// parameters, and cancel a long job. Screenshots go to SHOTS_DIR. Usage: node web_page.mjs PORT SHOTS_DIR DROP_IMAGE
import puppeteer from "puppeteer-core";
import { readFileSync } from "node:fs";
import assert from "node:assert/strict";

const [port, shots, dropImage] = process.argv.slice(2);
const base = `http://127.0.0.1:${port}`;
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const failures = [];
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  page.on("console", (m) => { if (m.type() === "error") failures.push("console: " + m.text()); });
  page.on("pageerror", (e) => failures.push("page error: " + e.message));
  // The page closes a job's event stream itself once the end event came (EventSource would reconnect):
  // that request is aborted by design; any other failed request is a fault.
  page.on("requestfailed", (r) => {
    if (/\/v1\/jobs\/[^/]+\/events$/.test(r.url()) && r.failure()?.errorText === "net::ERR_ABORTED") return;
    failures.push("request failed: " + r.url() + " " + (r.failure()?.errorText ?? ""));
  });

  await page.goto(base + "/", { waitUntil: "networkidle0" });
  await page.waitForFunction(() => /photos/.test(document.getElementById("info").textContent));
  const info = await page.$eval("#info", (e) => e.textContent);
  console.log("header:", info);

  // 1. Type a query, press Enter: a grid of thumbnails, scores descending, every thumbnail loaded.
  await page.type("#q", "Cat with paint");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.querySelectorAll("#results figure").length > 0);
  await page.waitForFunction(() => [...document.querySelectorAll("#results img")].every((i) => i.complete && i.naturalWidth > 0));
  const first = await page.$$eval("#results figure", (fs) =>
    fs.map((f) => ({ name: f.querySelector(".name").textContent, score: Number(f.querySelector(".score").textContent) })));
  console.log("query 'Cat with paint':", first.map((r) => `${r.name} ${r.score}`).join(", "));
  assert.ok(first.length >= 4, "at least the four lab photos");
  for (let i = 1; i < first.length; ++i) assert.ok(first[i - 1].score >= first[i].score, "scores descend");
  const status = await page.$eval("#status", (e) => e.textContent);
  assert.match(status, /results for “Cat with paint” in [\d.]+ ms \((exact|hnsw) over \d+ photos\)/);
  await page.screenshot({ path: `${shots}/collection-search.png` });

  // 2. Click the third result: photos like it, itself first at score 1.
  const third = first[2].name;
  await (await page.$$("#results figure img"))[2].click();
  // The status says "searching …" while the request is out and "N results for …" once the grid is redrawn.
  await page.waitForFunction((n) => document.getElementById("status").textContent.includes("results for photos like " + n), {}, third);
  const similar = await page.$$eval("#results figure", (fs) =>
    fs.map((f) => ({ name: f.querySelector(".name").textContent, score: Number(f.querySelector(".score").textContent) })));
  console.log(`click on ${third}:`, similar.map((r) => `${r.name} ${r.score}`).join(", "));
  assert.equal(similar[0].score, 1);
  assert.ok(similar.some((r) => r.name === third && r.score === 1), "the clicked photo is among the score-1 results");

  // 3. Search by a picked file (the page's file input) and by a dropped one (a drop event carrying it).
  const [input] = await page.$$("#file");
  await input.uploadFile(dropImage);
  await page.waitForFunction(() => document.getElementById("status").textContent.includes("results for the image"));
  const byFile = await page.$$eval("#results .score", (s) => s.map((e) => Number(e.textContent)));
  const bytes = readFileSync(dropImage).toString("base64");
  await page.evaluate(async (b64) => {
    const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([data], "dropped.png", { type: "image/png" }));
    document.getElementById("results").replaceChildren();
    document.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true, cancelable: true }));
    document.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }, bytes);
  await page.waitForFunction(() => document.getElementById("status").textContent.includes("results for the image dropped.png"));
  const byDrop = await page.$$eval("#results .score", (s) => s.map((e) => Number(e.textContent)));
  console.log("by file:", byFile.join(" "), "| by drop:", byDrop.join(" "));
  assert.deepEqual(byDrop, byFile, "the dropped image ranks as the picked file does");
  assert.equal(byDrop[0], 1, "the collection holds the dropped photo itself");
  await page.screenshot({ path: `${shots}/collection-drop.png` });

  // 4. The lab's view: pick two photos, type captions, compare: an annotated heatmap.
  await page.evaluate(() => window.scrollTo(0, 0));
  const boxes = await page.$$("#results figure input[type=checkbox]");
  await boxes[0].click();
  await boxes[1].click();
  await page.type("#captions", "Cat with paint\nrock statue\njellyfish");
  await page.click("#compare");
  await page.waitForSelector("#heatmap svg");
  const cells = await page.$$eval("#heatmap svg text", (t) => t.map((e) => e.textContent));
  console.log("heatmap texts:", cells.join(" | "));
  assert.ok(cells.includes("rock statue"), "row labels are the captions");
  await page.$eval("#lab", (e) => e.scrollIntoView());
  await page.screenshot({ path: `${shots}/collection-heatmap.png`, fullPage: true });

  // 5. The generate tab: a prompt, a sampler, steps and a seed; the progress bar fills from the job's
  // events, and the image appears with the parameters its PNG carries.
  await page.click("#tab-generate");
  await page.waitForSelector("#generate-view:not([hidden])");
  await page.type("#gen-prompt", "An astronaut riding a green horse");
  await page.select("#gen-sampler", "Euler a");
  await page.type("#gen-steps", "30");
  await page.type("#gen-seed", "7");
  await page.type("#gen-size", "64x64");
  const progressSeen = new Set();
  await page.exposeFunction("reportProgress", (v) => progressSeen.add(v));
  await page.evaluate(() => new MutationObserver(() => window.reportProgress(document.getElementById("gen-status").textContent))
    .observe(document.getElementById("gen-status"), { childList: true, characterData: true, subtree: true }));
  await page.click("#gen-go");
  await page.waitForFunction(() => document.getElementById("gen-status").textContent.startsWith("done in"), { timeout: 60000 });
  await page.waitForFunction(() => { const i = document.getElementById("gen-image"); return i.complete && i.naturalWidth === 64; });
  const parameters = await page.$eval("#gen-parameters", (e) => e.textContent);
  console.log("generated:", JSON.stringify(parameters), "| status seen:", [...progressSeen].filter((t) => t.startsWith("step")).length, "step updates");
  assert.match(parameters, /^An astronaut riding a green horse\nSteps: 30, Sampler: Euler a, CFG scale: 5, Seed: 7, Size: 64x64, Model: sdxl$/);
  assert.ok([...progressSeen].some((t) => /^step \d+ of 30/.test(t)), "the progress shows steps");
  assert.equal(await page.$eval("#gen-progress", (e) => e.value), 1);
  await page.screenshot({ path: `${shots}/generate-done.png`, fullPage: true });

  // 6. Cancel a long job mid-run: it stops at its next step and says so.
  await page.$eval("#gen-steps", (e) => { e.value = "1000"; });
  await page.click("#gen-go");
  await page.waitForFunction(() => /^step \d+ of 1000/.test(document.getElementById("gen-status").textContent), { timeout: 30000 });
  await page.screenshot({ path: `${shots}/generate-running.png`, fullPage: true });
  await page.click("#gen-cancel");
  await page.waitForFunction(() => document.getElementById("gen-status").textContent.startsWith("cancelled after"), { timeout: 30000 });
  const cancelled = await page.$eval("#gen-status", (e) => e.textContent);
  console.log("cancel:", cancelled);
  assert.ok(Number(cancelled.match(/after (\d+)/)[1]) < 1000);
} finally {
  await browser.close();
}
if (failures.length) {
  console.error(failures.join("\n"));
  process.exit(1);
}
console.log("web page: ok");
