// Downloads: the image (at 1x, 2x or 4x), the layout, the sheet, the scene graph JSON, the
// editor state, and the layout exports of POST /api/export (GLIGEN boxes, segmentation maps,
// COCO annotations).

import { state, graphWithPins, splitPins, api } from "./core.js";
import { picture, run } from "./ops.js";
import { stateData } from "./persist.js";
import { formatGraph } from "./view.js";

export const SCALES = [1, 2, 4];
export const EXPORT_FORMATS = {
  gligen: "GLIGEN boxes and phrases (JSON)",
  seg: "segmentation maps (PNG)",
  coco: "COCO annotations (JSON)",
};

export function download(href, name) {
  const a = document.createElement("a");
  a.href = href;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
}

function downloadBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  download(url, name);
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function downloadText(text, name, type = "application/json") {
  downloadBlob(new Blob([text], { type }), name);
}

export function baseName() {
  const cur = state.cur;
  return `sg2img_seed${cur.seed}` + (cur.sample ? `_sample${cur.sample}` : "") +
         (cur.edits.length ? `_edit${cur.edits.length}` : "");
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const im = new Image();
    im.onload = () => resolve(im);
    im.onerror = () => reject(new Error("the image could not be decoded"));
    im.src = src;
  });
}

// The image at `scale` times the model's size. The server makes images at the model's size
// only (its generate request has no size), so larger ones are scaled here, in the page, with
// the browser's smooth (high quality) scaling: more pixels, no more detail.
export async function downloadImage(scale = 1) {
  const src = state.cur.result && state.cur.result.image;
  if (!src) return;
  const name = `${baseName()}${scale > 1 ? `_${scale}x` : ""}.png`;
  if (scale === 1) { download(src, name); return; }
  const im = await loadImage(src);
  const canvas = document.createElement("canvas");
  canvas.width = im.naturalWidth * scale;
  canvas.height = im.naturalHeight * scale;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(im, 0, 0, canvas.width, canvas.height);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  downloadBlob(blob, name);
}

export function downloadLayout() {
  if (state.cur.result) download(state.cur.result.layout, `${baseName()}_layout.png`);
}

export async function downloadSheet() {
  const cur = state.cur;
  if (!cur.result) return;
  await run(async () => {
    const r = await picture(cur, ["sheet"]);
    download(r.sheet, `${baseName()}_sheet.png`);
  }, "model-error");
}

export function downloadJSON() {
  downloadText(formatGraph(graphWithPins(state.cur.graph, state.cur.pins)), "scene_graph.json");
}

// The whole history (graph, pins, seed, sample, edit chain of every snapshot): "Open file…"
// takes it back.
export function downloadState() {
  downloadText(JSON.stringify(stateData(true), null, 1) + "\n", "sg2img_editor_state.json");
}

// What an export lays out: with no edits, the graph and its pins (the server lays it out as
// for the picture shown); after edits, every box as shown, pinned, since a fresh layout of
// the edited graph would place the unpinned objects elsewhere.
export function exportRequest(format) {
  const cur = state.cur;
  const [graph, pins] = splitPins(graphWithPins(cur.graph, cur.pins));
  const boxes = cur.edits.length && cur.result ? cur.result.objects.map((o) => [...o.box]) : pins;
  const body = { model: state.model, graph, seed: cur.seed, sample: cur.sample || 0, format };
  if (boxes.some((b) => b)) body.boxes = boxes;
  return body;
}

export async function exportLayout(format) {
  if (!state.cur.result) return;
  await run(async () => {
    const r = await api("/api/export", exportRequest(format));
    for (const f of r.files || []) {
      const name = String(f.name || "export").replace(/[^\w.-]+/g, "_");
      if (f.media_type === "image/png") download(`data:image/png;base64,${f.data}`, name);
      else {
        const type = /^[\w.+-]+\/[\w.+-]+$/.test(f.media_type) ? f.media_type : "application/json";
        downloadText(String(f.data), name, type);
      }
    }
  }, "model-error");
}
