// sg2img scene graph editor. Plain JavaScript, no build step, nothing loaded from elsewhere.
//
// The page keeps a history of snapshots. A snapshot is the graph, its pinned boxes, the seed
// and how its picture was made: either afresh (POST /api/generate), or as a chain of edits
// from a base graph (POST /api/manipulate), so that an edit keeps the layout and the noise of
// the objects it does not touch. Undo and redo step through the snapshots without asking the
// server again.
//
// The page's modules: core.js (the state and the server), ops.js (what the editor does) and
// view.js (drawing the page). This one wires the controls to the operations and starts.

import { $, state, emptySnapshot, RequestError, api, setStatus, showError } from "./core.js";
import {
  push, undo, redo, fresh, addObject, removeObject, renameObject, unpin, moveBox, resampleObject,
  addRelationship, changeRelationship, removeRelationship, newSeed, fourSamples, adoptSample,
  loadJSONText, switchModel, setVocab, download, baseName, downloadSheet, downloadJSON,
} from "./ops.js";
import { actions, render } from "./view.js";

const STARTER = {
  objects: ["sky", "grass", "sheep", "tree", "cloud"],
  relationships: [[0, "above", 1], [2, "inside", 1], [3, "left of", 2], [4, "inside", 0]],
};

// The view's controls call these (view.js cannot import ops.js, which imports it).
Object.assign(actions, { removeObject, renameObject, unpin, moveBox, resampleObject,
                         changeRelationship, removeRelationship, adoptSample });

// ------------------------------------------------------------------ start
async function start() {
  $("add-object").addEventListener("submit", addObject);
  $("add-rel").addEventListener("submit", addRelationship);
  $("undo").addEventListener("click", undo);
  $("redo").addEventListener("click", redo);
  $("new-seed").addEventListener("click", newSeed);
  $("samples-btn").addEventListener("click", fourSamples);
  $("dl-image").addEventListener("click", () => download(state.cur.result.image, `${baseName()}.png`));
  $("dl-layout").addEventListener("click", () => download(state.cur.result.layout, `${baseName()}_layout.png`));
  $("dl-sheet").addEventListener("click", downloadSheet);
  $("dl-json").addEventListener("click", downloadJSON);
  $("json-load").addEventListener("click", () => loadJSONText($("json").value, "the JSON text"));
  $("json-file").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    e.target.value = "";
    if (!file) return;
    if (file.size > (state.limits.max_body_bytes || 262144)) {
      showError("json-error", new RequestError(413, { message: `${file.name} is ${file.size} bytes, more than the server's limit of ${state.limits.max_body_bytes}` }));
      return;
    }
    loadJSONText(await file.text(), file.name);
  });
  $("model").addEventListener("change", (e) => switchModel(e.target.value));
  for (const id of ["add-pred", "add-target", "rel-s", "rel-o"]) {
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

  state.cur = { ...emptySnapshot(0), initial: true };
  render();
  try {
    const m = await api("/api/models");
    state.models = m.models;
    state.limits = m.limits;
    state.features = m.features;
    state.model = m.default;
    $("model").replaceChildren(...m.models.map((x) => Object.assign(new Option(`${x.label} · ${x.image_size} px`, x.id), { title: `${x.num_objects} object classes, ${x.num_predicates} predicates, on ${x.device}` })));
    $("model").value = m.default;
    setVocab(await api(`/api/vocab?model=${encodeURIComponent(m.default)}`));
  } catch (e) {
    showError("model-error", e);
    setStatus("server unreachable", "bad");
    return;
  }
  setStatus("ready");
  const known = new Set(state.vocab.objects), preds = new Set(state.vocab.predicates);
  const wantsEmpty = location.hash === "#empty";
  if (!wantsEmpty && STARTER.objects.every((n) => known.has(n)) && STARTER.relationships.every((r) => preds.has(r[1]))) {
    await fresh(STARTER, STARTER.objects.map(() => null), 0, "example graph", "model-error");
  } else {
    render();
  }
  document.body.dataset.ready = "1";
}

start();
