// sg2img scene graph editor. Plain JavaScript, no build step, nothing loaded from elsewhere.
//
// The page keeps a history of snapshots. A snapshot is the graph (with its attributes), its
// pinned boxes, the seed and sample number, and how its picture was made: either afresh
// (POST /api/generate), or as a chain of edits from a base graph (POST /api/manipulate), so
// that an edit keeps the layout and the noise of the objects it does not touch. Undo and redo
// step through the snapshots without asking the server again. The history is kept in
// localStorage, so a reload finds it; a link (the state in the location hash) and a file carry
// it elsewhere.
//
// The page's modules: core.js (the state and the server), ops.js (what the editor does),
// view.js (drawing the page), geometry.js (relationships against boxes), persist.js (keeping
// the state) and downloads.js. This one wires the controls to the operations and starts.

import { $, state, emptySnapshot, RequestError, api, setStatus, showError } from "./core.js";
import {
  undo, redo, fresh, addObject, removeObject, renameObject, setAttributes, unpin, moveBox,
  resampleObject, addRelationship, changeRelationship, removeRelationship, newSeed, fourSamples,
  adoptSample, loadGraph, switchModel, setVocab, restoreState,
} from "./ops.js";
import {
  HASH_PREFIX, MAX_STATE_BYTES, StateError, forgetLocal, hashStateText, isStateData, loadLocal,
  parseState, parseStateText, shareURL,
} from "./persist.js";
import {
  downloadImage, downloadJSON, downloadLayout, downloadSheet, downloadState, exportLayout,
} from "./downloads.js";
import { actions, el, render } from "./view.js";

const STARTER = {
  objects: ["sky", "grass", "sheep", "tree", "cloud"],
  relationships: [[0, "above", 1], [2, "inside", 1], [3, "left of", 2], [4, "inside", 0]],
};

// The view's controls call these (view.js cannot import ops.js, which imports it).
Object.assign(actions, { removeObject, renameObject, setAttributes, unpin, moveBox, resampleObject,
                         changeRelationship, removeRelationship, adoptSample });

// ------------------------------------------------------------------ notices
// A message above the editor that stays until closed or replaced (errors next to fields go
// with the next request; this one is about the page itself: a refused link, a copied link).
function notice(kind, ...content) {
  const box = $("notice");
  const close = el("button", { type: "button", className: "icon", textContent: "×", "aria-label": "close the message",
                               on: { click: () => { box.hidden = true; } } });
  box.className = `notice ${kind}`;
  box.replaceChildren(el("div", { className: "notice-text" }, ...content), close);
  box.hidden = false;
}

// ------------------------------------------------------------------ opening files and links
function openText(text, source) {
  let data;
  try {
    data = JSON.parse(text);
  } catch (e) {
    showError("json-error", new RequestError(0, { message: `${source} is not valid JSON: ${e.message}` }));
    return;
  }
  if (isStateData(data)) { openState(() => parseState(data, state.limits), source, false); return; }
  let note = "";
  if (Array.isArray(data)) {
    if (!data.length) { showError("json-error", new RequestError(0, { message: `${source} holds an empty list` })); return; }
    if (data.length > 1) note = ` (graph 1 of ${data.length})`;
    data = data[0];
  }
  if (!data || typeof data !== "object" || Array.isArray(data)) {
    showError("json-error", new RequestError(0, { message: `${source} must hold a scene graph object with "objects"` }));
    return;
  }
  loadGraph(data, source, note);
}

// Restore a kept state; `read` parses and checks it (and may throw StateError). Returns
// whether the page now shows it; if not, the reason is in the notice and the page is as it
// was (`starting`: the page goes on to a clean start, and says so).
async function openState(read, source, starting = true) {
  const after = starting ? "The editor starts clean; ask for a new link or file."
    : "The editor is unchanged.";
  let saved;
  try {
    saved = await read();
  } catch (e) {
    if (!(e instanceof StateError)) console.error(e);
    notice("bad", `${source} cannot be used: ${e instanceof StateError ? e.message : "it could not be read"}. ${after}`);
    return false;
  }
  const { ok, message } = await restoreState(saved);
  if (!ok) {
    notice("bad", `${source} cannot be shown: ${message}. ${after}`);
    return false;
  }
  notice(message ? "bad" : "good", message ? `${source} restored, but ${message}.` : `${source} restored.`);
  return true;
}

async function share() {
  let url;
  try {
    url = await shareURL();
  } catch (e) {
    notice("bad", e instanceof StateError ? `No link: ${e.message}.` : "No link: the page could not pack the state.");
    return;
  }
  const field = el("input", { readOnly: true, value: url, "aria-label": "link to this state",
                              dataset: { testid: "share-url" } });
  let copied = false;
  try { await navigator.clipboard.writeText(url); copied = true; } catch (e) { /* shown to copy by hand */ }
  notice("good", copied ? "Link copied; it opens this graph, seed, sample, pins and edits: "
                        : "Copy this link; it opens this graph, seed, sample, pins and edits: ", field);
  field.select();
}

// ------------------------------------------------------------------ start
function wire() {
  $("add-object").addEventListener("submit", addObject);
  $("add-rel").addEventListener("submit", addRelationship);
  $("undo").addEventListener("click", undo);
  $("redo").addEventListener("click", redo);
  $("new-seed").addEventListener("click", newSeed);
  $("samples-btn").addEventListener("click", fourSamples);
  $("dl-image").addEventListener("click", () => downloadImage(Number($("dl-scale").value)));
  $("dl-layout").addEventListener("click", downloadLayout);
  $("dl-sheet").addEventListener("click", downloadSheet);
  $("dl-json").addEventListener("click", downloadJSON);
  $("dl-state").addEventListener("click", downloadState);
  for (const id of ["export-gligen", "export-seg", "export-coco"]) {
    $(id).addEventListener("click", () => exportLayout($(id).dataset.format));
  }
  // The download menu closes after a choice and on a click elsewhere.
  const menu = $("downloads");
  menu.addEventListener("click", (e) => { if (e.target.tagName === "BUTTON") menu.open = false; });
  document.addEventListener("click", (e) => { if (!menu.contains(e.target)) menu.open = false; });
  menu.addEventListener("toggle", () => {   // open towards the side with room
    menu.classList.remove("flip");
    const panel = menu.querySelector(".menu-panel").getBoundingClientRect();
    if (menu.open && panel.right > document.documentElement.clientWidth) menu.classList.add("flip");
  });
  $("share").addEventListener("click", share);
  $("json-load").addEventListener("click", () => openText($("json").value, "the JSON text"));
  $("json-file").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    e.target.value = "";
    if (!file) return;
    const limit = Math.max(state.limits.max_body_bytes || 262144, MAX_STATE_BYTES);
    if (file.size > limit) {
      showError("json-error", new RequestError(413, { message: `${file.name} is ${file.size} bytes, more than the limit of ${limit}` }));
      return;
    }
    openText(await file.text(), file.name);
  });
  $("model").addEventListener("change", (e) => switchModel(e.target.value));
  for (const id of ["add-pred", "add-target", "rel-s", "rel-p", "rel-o"]) {
    $(id).addEventListener("change", () => { $(id).dataset.touched = "1"; });
  }
  $("add-object-error").dataset.input = "add-name";
  $("add-rel-error").dataset.input = "rel-p";
  $("json-error").dataset.input = "json";
  document.addEventListener("keydown", (e) => {
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName);
    if (!(e.ctrlKey || e.metaKey) || typing) return;
    if (e.key.toLowerCase() === "z" && !e.shiftKey) { e.preventDefault(); undo(); }
    else if (e.key.toLowerCase() === "y" || (e.key.toLowerCase() === "z" && e.shiftKey)) { e.preventDefault(); redo(); }
  });
}

// The state of a link (#state=...), taken once: the hash is cleared, and from then on the
// page keeps its state itself, so a reload after more edits does not go back to the link's.
function openLink(hash, starting) {
  history.replaceState(null, "", location.pathname + location.search);
  return openState(async () => parseStateText(await hashStateText(hash), state.limits),
                   "The link's editor state", starting);
}

// What the page opens with: the state of a link, else the one kept from the last visit, else
// the example graph (#empty: nothing).
async function firstState() {
  const hash = location.hash;
  if (hash.startsWith(HASH_PREFIX)) {
    if (await openLink(hash, true)) return;
  } else if (hash !== "#empty") {
    const kept = loadLocal();
    if (kept !== null) {
      if (await openState(() => parseStateText(kept, state.limits), "The editor state kept from your last visit")) {
        $("notice").hidden = true;   // a reload that finds its state needs no message
        return;
      }
      forgetLocal();
    }
  }
  const known = new Set(state.vocab.objects), preds = new Set(state.vocab.predicates);
  if (hash !== "#empty" && STARTER.objects.every((n) => known.has(n)) && STARTER.relationships.every((r) => preds.has(r[1]))) {
    await fresh(STARTER, STARTER.objects.map(() => null), { seed: 0, sample: 0 }, "example graph", "model-error");
  } else {
    render();
  }
}

async function start() {
  wire();
  state.cur = { ...emptySnapshot(0), initial: true };
  render();
  try {
    const m = await api("/api/models");
    state.models = m.models;
    state.limits = m.limits;
    state.features = m.features;
    state.model = state.defaultModel = m.default;
    $("model").replaceChildren(...m.models.map((x) => Object.assign(new Option(`${x.label} · ${x.image_size} px`, x.id), { title: `${x.num_objects} object classes, ${x.num_predicates} predicates, on ${x.device}` })));
    $("model").value = m.default;
    setVocab(await api(`/api/vocab?model=${encodeURIComponent(m.default)}`));
  } catch (e) {
    showError("model-error", e);
    setStatus("server unreachable", "bad");
    return;
  }
  setStatus("ready");
  await firstState();
  // A link pasted into the address bar of an open page changes only the hash.
  window.addEventListener("hashchange", () => {
    if (location.hash.startsWith(HASH_PREFIX) && !state.busy) openLink(location.hash, false);
  });
  document.body.dataset.ready = "1";
}

start();
