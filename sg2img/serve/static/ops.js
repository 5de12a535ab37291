// What the editor does: history (push, undo, redo), the requests that lay out or edit the
// graph, every edit the page offers, loading JSON, switching models, and restoring a kept
// state (persist.js reads and checks it).

import {
  $, state, emptySnapshot, cloneGraph, graphWithPins, splitPins, attributesOf, RequestError, api,
  setStatus, setBusy, clearErrors, showError,
} from "./core.js";
import { saveLocal } from "./persist.js";
import { render, select } from "./view.js";

const INCLUDE = ["image", "layout", "graph"];

// ------------------------------------------------------------------ history
export function push(snap) {
  if (state.cur && !state.cur.initial) state.undo.push(state.cur);
  state.cur = snap;
  state.redo = [];
  state.samples = null;
  render();
  saveLocal();
}

// Undo and redo move the current snapshot onto one stack and take the next from the other.
// A snapshot restored from a kept state has no picture yet: it is asked for on the way.
async function travel(from, to) {
  if (state.busy || !from.length) return;
  to.push(state.cur);
  state.cur = from.pop();
  state.samples = null;
  clearErrors();
  render();
  saveLocal();
  if (!state.cur.result && state.cur.graph.objects.length) await showPicture(state.cur, "model-error");
}

export function undo() { return travel(state.undo, state.redo); }

export function redo() { return travel(state.redo, state.undo); }

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

// Every picture request names its sample of the seed (the seed rule: seed and sample name a
// picture, as `sg2img generate --seed S --sample K` does).
function withSample(body, sample) {
  body.sample = sample || 0;
  return body;
}

// The request for a snapshot's picture: its edit chain (manipulate) from the base graph, or
// the base graph laid out afresh (generate) with its pins, seed and sample.
export function picture(snap, include = INCLUDE) {
  if (snap.edits.length) {
    return api("/api/manipulate", withSample({ model: state.model, graph: snap.base, edits: snap.edits,
                                               seed: snap.seed, include }, snap.sample));
  }
  const [graph, pins] = splitPins(snap.base || graphWithPins(snap.graph, snap.pins));
  const body = { model: state.model, graph, include };
  if (snap.seed !== null && snap.seed !== undefined) body.seed = snap.seed;
  if (pins.some((b) => b)) body.boxes = pins;
  return api("/api/generate", withSample(body, snap.sample));
}

// Fetch a snapshot's picture; its graph and pins become the ones the server drew.
async function fetchPicture(snap) {
  const r = await picture(snap);
  [snap.graph, snap.pins] = splitPins(r.graph);
  snap.result = r;
}

export function showPicture(snap, slot) {
  return run(() => fetchPicture(snap), slot);
}

// ------------------------------------------------------------------ operations
// Which picture a snapshot shows: its seed and sample number.
export function at(snap) { return { seed: snap.seed, sample: snap.sample || 0 }; }

// Lay the graph out afresh (generate), with its pinned boxes, seed and sample.
export async function fresh(graph, pins, pick, label, slot, onSuggestion) {
  const { seed, sample } = pick;
  if (!graph.objects.length) {
    push({ ...emptySnapshot(seed), sample, label });
    return true;
  }
  return run(async () => {
    const snap = { graph: cloneGraph(graph), pins: [...pins], seed, sample,
                   base: graphWithPins(graph, pins), edits: [], result: null, label, kind: "new" };
    await fetchPicture(snap);
    snap.seed = snap.result.seed;
    snap.base = graphWithPins(snap.graph, snap.pins);
    push(snap);
  }, slot, onSuggestion);
}

// Apply an edit through manipulate: the chain from the base graph, with the same seed and
// sample, so that the chain starts from the picture shown.
export async function edit(op, slot, onSuggestion) {
  const cur = state.cur;
  if (!cur.base) return false;
  if (cur.edits.length >= state.limits.max_edits) {
    // A chain is bounded; start a new one from the current graph (boxes stay where pinned).
    return fresh(cur.graph, cur.pins, at(cur), "new chain", slot, onSuggestion);
  }
  return run(async () => {
    const snap = { ...at(cur), base: cur.base, edits: [...cur.edits, op], kind: "edit" };
    await fetchPicture(snap);
    const steps = snap.result.steps;
    push({ ...snap, label: steps[steps.length - 1].description });
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
    if (g.attributes) g.attributes.push([]);
    fresh(g, [...cur.pins, null], at(cur), `add ${name} (new layout)`, "add-object-error",
          nameSuggest("add-name")).then(done);
  } else {
    edit({ op: "add", object: name, relationship: ["new", pred, target] }, "add-object-error",
         nameSuggest("add-name")).then(done);
  }
}

export function removeObject(i) {
  const cur = state.cur;
  if (cur.graph.objects.length === 1) {
    push({ ...emptySnapshot(cur.seed), sample: cur.sample, label: `remove ${cur.graph.objects[0]}` });
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

// Give object i these attributes (the "attributes" edit: they replace its old ones; its box
// and mask stay).
export function setAttributes(i, attributes) {
  const old = attributesOf(state.cur.graph, i);
  if (attributes.length === old.length && attributes.every((a, k) => a === old[k])) return;
  select(i);
  edit({ op: "attributes", index: i, attributes }, `obj-error-${i}`);
}

export function unpin(i) {
  const cur = state.cur;
  const pins = [...cur.pins];
  pins[i] = null;
  fresh(cur.graph, pins, at(cur), `unpin ${cur.graph.objects[i]} (new layout)`, `obj-error-${i}`);
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
  const s = Number($("rel-s").value), o = Number($("rel-o").value), p = $("rel-p").value;
  if (!p || !cur.graph.objects.length) return;
  const g = cloneGraph(cur.graph);
  g.relationships.push([s, p, o]);
  const names = cur.graph.objects;
  fresh(g, cur.pins, at(cur), `${names[s]} ${p} ${names[o]} (new layout)`, "add-rel-error");
}

export function changeRelationship(k, part, value) {
  const cur = state.cur;
  const rel = cur.graph.relationships[k];
  if (part === "p") {
    if (!value || value === rel[1]) return render(false);
    edit({ op: "predicate", relationship: k, predicate: value, move: "subject" }, `rel-error-${k}`);
    return;
  }
  const g = cloneGraph(cur.graph);
  g.relationships[k][part === "s" ? 0 : 2] = Number(value);
  const [s, p, o] = g.relationships[k];
  fresh(g, cur.pins, at(cur), `relationship ${k}: ${g.objects[s]} ${p} ${g.objects[o]} (new layout)`,
        `rel-error-${k}`);
}

export function removeRelationship(k) {
  const cur = state.cur;
  const g = cloneGraph(cur.graph);
  const [s, p, o] = g.relationships.splice(k, 1)[0];
  fresh(g, cur.pins, at(cur), `remove ${g.objects[s]} ${p} ${g.objects[o]} (new layout)`,
        `rel-error-${k}`);
}

export function newSeed() {
  const cur = state.cur;
  const seed = Math.floor(Math.random() * 2 ** 31);
  return fresh(cur.graph, cur.pins, { seed, sample: 0 }, `new seed ${seed}`, "model-error");
}

// Samples 0-3 of the current seed, side by side; picking one continues from it.
export async function fourSamples() {
  const cur = state.cur;
  if (!cur.graph.objects.length) return;
  let r;
  await run(async () => {
    const body = { model: state.model, graph: cloneGraph(cur.graph), seed: cur.seed,
                   num_samples: Math.min(4, state.limits.max_samples || 4), include: INCLUDE };
    if (cur.pins.some((b) => b)) body.boxes = cur.pins;
    r = await api("/api/generate", body);
  }, "model-error");
  if (r) { state.samples = r; render(false); }
}

export function adoptSample(k) {
  const r = state.samples, cur = state.cur;
  const { seed, sample } = r.samples[k];            // "4 samples": samples 0-3 of one seed
  const result = { ...r, seed, image: r.samples[k].image };
  push({ graph: cloneGraph(cur.graph), pins: [...cur.pins], seed, sample,
         base: graphWithPins(cur.graph, cur.pins), edits: [], result,
         label: `sample ${sample} of seed ${seed}`, kind: "new" });
}

export function loadGraph(data, source, note = "") {
  // The server validates everything (the same parser as the command line).
  return run(async () => {
    const snap = { graph: { objects: [], relationships: [] }, pins: [], ...at(state.cur),
                   base: data, edits: [], result: null, label: `load ${source}${note}`, kind: "new" };
    const r = await api("/api/generate", withSample({ model: state.model, graph: data, seed: snap.seed,
                                                      include: INCLUDE }, snap.sample));
    [snap.graph, snap.pins] = splitPins(r.graph);
    Object.assign(snap, { result: r, seed: r.seed, base: graphWithPins(snap.graph, snap.pins) });
    push(snap);
  }, "json-error");
}

export async function switchModel(id) {
  const prev = state.model;
  try {
    const v = await api(`/api/vocab?model=${encodeURIComponent(id)}`);
    state.model = id;
    const cur = state.cur;
    let graph = cur.graph, label = `model ${id}`;
    if (graph.attributes && !(v.attributes && v.attributes.length)) {
      // A model without attributes cannot take them: the graph goes on without.
      graph = { objects: graph.objects, relationships: graph.relationships };
      label += " (its vocabulary has no attributes: they are dropped)";
    }
    const ok = await fresh(graph, cur.pins, at(cur), label, "model-error");
    if (!ok) { state.model = prev; $("model").value = prev; return; }
    setVocab(v);
    render(false);
  } catch (e) {
    state.model = prev;
    $("model").value = prev;
    showError("model-error", e);
  }
}

export function setVocab(v) {
  state.vocab = { attributes: null, class_attributes: null, ...v };
  $("object-names").replaceChildren(...v.objects.map((n) => new Option(n, n)));
}

// ------------------------------------------------------------------ kept states
// Take a checked state (persist.parseState) as the page's history and show its current
// snapshot. Returns {ok, message}: not ok leaves the page as it was, with the reason in
// `message`; ok may carry a note (a model this server does not offer was replaced).
export async function restoreState(saved) {
  const known = !saved.model || state.models.some((m) => m.id === saved.model);
  const model = known && saved.model ? saved.model : state.model;
  const note = known ? null : `it was made with model ${saved.model}, which this server does ` +
                              `not offer, so it is shown with model ${model}`;
  const cur = saved.history[saved.current];
  const prevModel = state.model, prevVocab = state.vocab;
  clearErrors();
  setBusy(true);
  try {
    if (model !== state.model) {
      setVocab(await api(`/api/vocab?model=${encodeURIComponent(model)}`));
      state.model = model;
      $("model").value = model;
    }
    if (cur.graph.objects.length) await fetchPicture(cur);
  } catch (e) {
    state.model = prevModel;
    $("model").value = prevModel;
    setVocab(prevVocab);
    setBusy(false);
    const why = e instanceof RequestError ? e.message : "the page could not show it";
    return { ok: false, message: note ? `${why} (${note})` : why };
  }
  setBusy(false);
  state.undo = saved.history.slice(0, saved.current);
  state.redo = saved.history.slice(saved.current + 1).reverse();
  state.cur = cur;
  state.samples = null;
  setStatus("ready");
  render();
  saveLocal();
  return { ok: true, message: note };
}
