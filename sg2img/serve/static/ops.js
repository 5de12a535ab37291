// What the editor does: history (push, undo, redo), the requests that lay out or edit the
// graph, every edit the page offers, loading JSON, switching models, and downloads.

import {
  $, state, emptySnapshot, cloneGraph, graphWithPins, currentModel, RequestError, api, setStatus,
  setBusy, clearErrors, showError,
} from "./core.js";
import { render, select } from "./view.js";

// ------------------------------------------------------------------ history
export function push(snap) {
  if (state.cur && !state.cur.initial) state.undo.push(state.cur);
  state.cur = snap;
  state.redo = [];
  state.samples = null;
  render();
}

// Undo and redo move the current snapshot onto one stack and take the next from the other.
function travel(from, to) {
  if (state.busy || !from.length) return;
  to.push(state.cur);
  state.cur = from.pop();
  state.samples = null;
  clearErrors();
  render();
}

export function undo() { travel(state.undo, state.redo); }

export function redo() { travel(state.redo, state.undo); }

// ------------------------------------------------------------------ requests
// Run one request; on error show it in `slot` (the element next to the field that caused it,
// looked up after the page is drawn again).
export async function run(fn, slot, onSuggestion) {
  if (state.busy) return false;
  clearErrors();
  setBusy(true);
  let error = null;
  try {
    await fn();
  } catch (e) {
    error = e instanceof RequestError ? e
      : new RequestError(0, { message: "something went wrong in the page; reload it" });
    if (!(e instanceof RequestError)) console.error(e);
  }
  setBusy(false);
  render(false);
  if (error) {
    showError(slot, error, onSuggestion);
    setStatus(error.status === 503 ? "server busy" : "not applied", "bad");
    return false;
  }
  setStatus("ready");
  return true;
}

// ------------------------------------------------------------------ operations
// Lay the graph out afresh (generate), with its pinned boxes and the given seed.
export async function fresh(graph, pins, seed, label, slot, onSuggestion) {
  if (!graph.objects.length) {
    push({ ...emptySnapshot(seed), label });
    return true;
  }
  return run(async () => {
    const body = { model: state.model, graph: cloneGraph(graph), include: ["image", "layout", "graph"] };
    if (seed !== null && seed !== undefined) body.seed = seed;
    if (pins.some((b) => b)) body.boxes = pins;
    const r = await api("/api/generate", body);
    const base = graphWithPins(graph, pins);
    push({ graph: cloneGraph(graph), pins: [...pins], seed: r.seed, base, edits: [],
           result: r, label, kind: "new" });
  }, slot, onSuggestion);
}

// Apply an edit through manipulate: the chain from the base graph, with the same seed.
export async function edit(op, slot, onSuggestion) {
  const cur = state.cur;
  if (!cur.base) return false;
  if (cur.edits.length >= state.limits.max_edits) {
    // A chain is bounded; start a new one from the current graph (boxes stay where pinned).
    return fresh(cur.graph, cur.pins, cur.seed, "new chain", slot, onSuggestion);
  }
  const edits = [...cur.edits, op];
  return run(async () => {
    const r = await api("/api/manipulate", {
      model: state.model, graph: cur.base, edits, seed: cur.seed,
      include: ["image", "layout", "graph"],
    });
    const g = r.graph;
    const pins = g.boxes ? g.boxes.map((b) => b && [...b]) : g.objects.map(() => null);
    push({ graph: cloneGraph(g), pins, seed: cur.seed, base: cur.base, edits, result: r,
           label: r.steps[r.steps.length - 1].description, kind: "edit" });
  }, slot, onSuggestion);
}

export function nameSuggest(inputId, then) {
  return (name) => { $(inputId).value = name; $(inputId).focus(); if (then) then(name); };
}

export function addObject(ev) {
  ev.preventDefault();
  const name = $("add-name").value.trim();
  if (!name) return;
  const cur = state.cur;
  const pred = $("add-pred").value;
  const target = Number($("add-target").value);
  const done = (ok) => { if (ok) $("add-name").value = ""; };
  if (!cur.graph.objects.length || pred === "") {
    const g = cloneGraph(cur.graph);
    g.objects.push(name);
    fresh(g, [...cur.pins, null], cur.seed, `add ${name} (new layout)`, "add-object-error",
          nameSuggest("add-name")).then(done);
  } else {
    edit({ op: "add", object: name, relationship: ["new", pred, target] }, "add-object-error",
         nameSuggest("add-name")).then(done);
  }
}

export function removeObject(i) {
  const cur = state.cur;
  if (cur.graph.objects.length === 1) {
    push({ ...emptySnapshot(cur.seed), label: `remove ${cur.graph.objects[0]}` });
    return;
  }
  edit({ op: "remove", index: i }, `obj-error-${i}`);
}

export function renameObject(i, input) {
  const name = input.value.trim();
  if (!name || name === state.cur.graph.objects[i]) { input.value = state.cur.graph.objects[i]; return; }
  edit({ op: "replace", index: i, object: name }, `obj-error-${i}`,
       (s) => { const el = $(`obj-name-${i}`); if (el) { el.value = s; renameObject(i, el); } })
    .then((ok) => { if (!ok) { const el = $(`obj-name-${i}`); if (el) { el.value = name; el.classList.add("invalid"); } } });
}

export function unpin(i) {
  const cur = state.cur;
  const pins = [...cur.pins];
  pins[i] = null;
  fresh(cur.graph, pins, cur.seed, `unpin ${cur.graph.objects[i]} (new layout)`, `obj-error-${i}`);
}

export function moveBox(i, box) {
  edit({ op: "move", index: i, box }, `obj-error-${i}`);
}

// Another look: the object draws new per-object noise (the "resample" edit); its box, its
// mask and every other object (noise included) stay. Only for models with per-object noise.
export function resampleObject(i) {
  select(i);
  edit({ op: "resample", index: i }, `obj-error-${i}`);
}


export function addRelationship(ev) {
  ev.preventDefault();
  const cur = state.cur;
  const s = Number($("rel-s").value), o = Number($("rel-o").value), p = $("rel-p").value.trim();
  if (!p || !cur.graph.objects.length) return;
  const g = cloneGraph(cur.graph);
  g.relationships.push([s, p, o]);
  const names = cur.graph.objects;
  fresh(g, cur.pins, cur.seed, `${names[s]} ${p} ${names[o]} (new layout)`, "add-rel-error",
        nameSuggest("rel-p")).then((ok) => { if (ok) $("rel-p").value = ""; });
}

export function changeRelationship(k, part, value) {
  const cur = state.cur;
  const rel = cur.graph.relationships[k];
  if (part === "p") {
    const p = value.trim();
    if (!p || p === rel[1]) return render(false);
    edit({ op: "predicate", relationship: k, predicate: p, move: "subject" }, `rel-error-${k}`,
         (s) => changeRelationship(k, "p", s))
      .then((ok) => { if (!ok) { const el = $(`rel-p-${k}`); if (el) { el.value = p; el.classList.add("invalid"); } } });
    return;
  }
  const g = cloneGraph(cur.graph);
  g.relationships[k][part === "s" ? 0 : 2] = Number(value);
  const [s, p, o] = g.relationships[k];
  fresh(g, cur.pins, cur.seed, `relationship ${k}: ${g.objects[s]} ${p} ${g.objects[o]} (new layout)`,
        `rel-error-${k}`);
}

export function removeRelationship(k) {
  const cur = state.cur;
  const g = cloneGraph(cur.graph);
  const [s, p, o] = g.relationships.splice(k, 1)[0];
  fresh(g, cur.pins, cur.seed, `remove ${g.objects[s]} ${p} ${g.objects[o]} (new layout)`,
        `rel-error-${k}`);
}

export function newSeed() {
  const cur = state.cur;
  const seed = Math.floor(Math.random() * 2 ** 31);
  fresh(cur.graph, cur.pins, seed, `new seed ${seed}`, "model-error");
}

export async function fourSamples() {
  const cur = state.cur;
  if (!cur.graph.objects.length) return;
  let r;
  await run(async () => {
    const body = { model: state.model, graph: cloneGraph(cur.graph), seed: cur.seed,
                   num_samples: Math.min(4, state.limits.max_samples || 4), include: ["image", "layout", "graph"] };
    if (cur.pins.some((b) => b)) body.boxes = cur.pins;
    r = await api("/api/generate", body);
  }, "model-error");
  if (r) { state.samples = r; render(false); }
}

export function adoptSample(k) {
  const r = state.samples, cur = state.cur;
  const s = r.samples[k];
  const result = { ...r, seed: s.seed, image: s.image };
  push({ graph: cloneGraph(cur.graph), pins: [...cur.pins], seed: s.seed,
         base: graphWithPins(cur.graph, cur.pins), edits: [], result, label: `sample with seed ${s.seed}`,
         kind: "new" });
}

export function loadJSONText(text, source) {
  let data;
  try {
    data = JSON.parse(text);
  } catch (e) {
    showError("json-error", new RequestError(0, { message: `${source} is not valid JSON: ${e.message}` }));
    return;
  }
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
  // The server validates everything (the same parser as the command line).
  run(async () => {
    const r = await api("/api/generate", { model: state.model, graph: data, seed: state.cur.seed,
                                           include: ["image", "layout", "graph"] });
    const g = r.graph;
    const pins = g.boxes ? g.boxes : g.objects.map(() => null);
    push({ graph: cloneGraph(g), pins, seed: r.seed, base: graphWithPins(g, pins), edits: [],
           result: r, label: `load ${source}${note}`, kind: "new" });
  }, "json-error");
}

export async function switchModel(id) {
  const prev = state.model;
  try {
    const v = await api(`/api/vocab?model=${encodeURIComponent(id)}`);
    state.model = id;
    const cur = state.cur;
    const ok = await fresh(cur.graph, cur.pins, cur.seed, `model ${id}`, "model-error");
    if (!ok) { state.model = prev; $("model").value = prev; return; }
    setVocab(v);
  } catch (e) {
    state.model = prev;
    $("model").value = prev;
    showError("model-error", e);
  }
}

export function setVocab(v) {
  state.vocab = v;
  const fill = (id, names) => $(id).replaceChildren(...names.map((n) => new Option(n, n)));
  fill("object-names", v.objects);
  fill("pred-names", v.predicates);
}

// ------------------------------------------------------------------ downloads
export function download(href, name) {
  const a = document.createElement("a");
  a.href = href;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
}

export function baseName() {
  return `sg2img_seed${state.cur.seed}` + (state.cur.edits.length ? `_edit${state.cur.edits.length}` : "");
}

export async function downloadSheet() {
  const cur = state.cur;
  if (!cur.result) return;
  await run(async () => {
    const r = cur.edits.length
      ? await api("/api/manipulate", { model: state.model, graph: cur.base, edits: cur.edits, seed: cur.seed, include: ["sheet"] })
      : await api("/api/generate", { model: state.model, graph: cur.base, seed: cur.seed, include: ["sheet"] });
    download(r.sheet, `${baseName()}_sheet.png`);
  }, "model-error");
}

export function downloadJSON() {
  const g = graphWithPins(state.cur.graph, state.cur.pins);
  const blob = new Blob([JSON.stringify(g, null, 2) + "\n"], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  download(url, "scene_graph.json");
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
