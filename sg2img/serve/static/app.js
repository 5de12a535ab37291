// sg2img scene graph editor. Plain JavaScript, no build step, nothing loaded from elsewhere.
//
// The page keeps a history of snapshots. A snapshot is the graph, its pinned boxes, the seed
// and how its picture was made: either afresh (POST /api/generate), or as a chain of edits
// from a base graph (POST /api/manipulate), so that an edit keeps the layout and the noise of
// the objects it does not touch. Undo and redo step through the snapshots without asking the
// server again.

const $ = (id) => document.getElementById(id);
const STARTER = {
  objects: ["sky", "grass", "sheep", "tree", "cloud"],
  relationships: [[0, "above", 1], [2, "inside", 1], [3, "left of", 2], [4, "inside", 0]],
};

const state = {
  models: [], model: null, limits: {}, features: {},
  vocab: { objects: [], predicates: [] },
  cur: null,          // the snapshot shown
  undo: [], redo: [],
  busy: false, selected: null, samples: null,
};

// ------------------------------------------------------------------ snapshots
function emptySnapshot(seed) {
  return { graph: { objects: [], relationships: [] }, pins: [], seed, base: null, edits: [],
           result: null, label: "empty graph", kind: "new" };
}

function cloneGraph(g) {
  return { objects: [...g.objects], relationships: g.relationships.map((r) => [...r]) };
}

function graphWithPins(graph, pins) {
  const g = cloneGraph(graph);
  if (pins.some((b) => b)) g.boxes = pins.map((b) => (b ? [...b] : null));
  return g;
}

function push(snap) {
  if (state.cur && !state.cur.initial) state.undo.push(state.cur);
  state.cur = snap;
  state.redo = [];
  state.samples = null;
  render();
}

function undo() {
  if (state.busy || !state.undo.length) return;
  state.redo.push(state.cur);
  state.cur = state.undo.pop();
  state.samples = null;
  clearErrors();
  render();
}

function redo() {
  if (state.busy || !state.redo.length) return;
  state.undo.push(state.cur);
  state.cur = state.redo.pop();
  state.samples = null;
  clearErrors();
  render();
}

// ------------------------------------------------------------------ server
class RequestError extends Error {
  constructor(status, error) {
    super(error.message);
    this.status = status;
    this.field = error.field;
    this.suggestions = error.suggestions || [];
    this.detail = error.detail;
  }
}

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  for (let attempt = 0; ; attempt++) {
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (e) {
      throw new RequestError(0, { message: "cannot reach the sg2img server; is it still running?" });
    }
    let data = null;
    try { data = await resp.json(); } catch (e) { /* not JSON: handled below */ }
    if (resp.status === 503 && attempt < 3) {
      const wait = Math.min(10, Number(resp.headers.get("Retry-After")) || 1);
      setStatus(`server busy, retrying in ${wait} s…`, "busy");
      await new Promise((r) => setTimeout(r, wait * 1000));
      continue;
    }
    if (!resp.ok || !data) {
      const err = (data && data.error) || { message: `the server answered ${resp.status}` };
      throw new RequestError(resp.status, err);
    }
    return data;
  }
}

function setStatus(text, kind = "") {
  const el = $("status");
  el.textContent = text;
  el.className = "status " + kind;
}

function setBusy(busy) {
  state.busy = busy;
  document.body.classList.toggle("busy", busy);
  for (const el of document.querySelectorAll("button, select, input, textarea")) {
    if (busy) { el.dataset.wasDisabled = el.disabled ? "1" : ""; el.disabled = true; }
    else if (el.dataset.wasDisabled !== undefined) { el.disabled = el.dataset.wasDisabled === "1"; delete el.dataset.wasDisabled; }
  }
  if (busy) setStatus("generating…", "busy");
}

// Run one request; on error show it in `slot` (the element next to the field that caused it,
// looked up after the page is drawn again).
async function run(fn, slot, onSuggestion) {
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

function clearErrors() {
  for (const el of document.querySelectorAll(".error")) el.replaceChildren();
  for (const el of document.querySelectorAll(".invalid")) el.classList.remove("invalid");
}

function showError(slot, err, onSuggestion) {
  const el = typeof slot === "string" ? $(slot) : slot;
  // Next to a field, the field needs no naming again; a loaded file keeps the location.
  let text = (slot !== "json-error" && err.detail) || err.message;
  const chips = err.suggestions.length && onSuggestion;
  if (chips) text = text.replace(/; closest \w+: \[.*\]$/, "");
  el.replaceChildren(document.createTextNode(text.charAt(0).toUpperCase() + text.slice(1)));
  if (chips) {
    const line = document.createElement("div");
    line.append("did you mean ");
    for (const name of err.suggestions) {
      const chip = document.createElement("button");
      chip.type = "button";
      chip.className = "chip";
      chip.textContent = name;
      chip.addEventListener("click", () => onSuggestion(name));
      line.append(chip);
    }
    el.append(line);
  }
  const input = el.dataset.input && $(el.dataset.input);
  if (input) input.classList.add("invalid");
}

// ------------------------------------------------------------------ operations
// Lay the graph out afresh (generate), with its pinned boxes and the given seed.
async function fresh(graph, pins, seed, label, slot, onSuggestion) {
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
async function edit(op, slot, onSuggestion) {
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

function nameSuggest(inputId, then) {
  return (name) => { $(inputId).value = name; $(inputId).focus(); if (then) then(name); };
}

function addObject(ev) {
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

function removeObject(i) {
  const cur = state.cur;
  if (cur.graph.objects.length === 1) {
    push({ ...emptySnapshot(cur.seed), label: `remove ${cur.graph.objects[0]}` });
    return;
  }
  edit({ op: "remove", index: i }, `obj-error-${i}`);
}

function renameObject(i, input) {
  const name = input.value.trim();
  if (!name || name === state.cur.graph.objects[i]) { input.value = state.cur.graph.objects[i]; return; }
  edit({ op: "replace", index: i, object: name }, `obj-error-${i}`,
       (s) => { const el = $(`obj-name-${i}`); if (el) { el.value = s; renameObject(i, el); } })
    .then((ok) => { if (!ok) { const el = $(`obj-name-${i}`); if (el) { el.value = name; el.classList.add("invalid"); } } });
}

function unpin(i) {
  const cur = state.cur;
  const pins = [...cur.pins];
  pins[i] = null;
  fresh(cur.graph, pins, cur.seed, `unpin ${cur.graph.objects[i]} (new layout)`, `obj-error-${i}`);
}

function moveBox(i, box) {
  edit({ op: "move", index: i, box }, `obj-error-${i}`);
}

// Another look: the object draws new per-object noise (the "resample" edit); its box, its
// mask and every other object (noise included) stay. Only for models with per-object noise.
function resampleObject(i) {
  select(i);
  edit({ op: "resample", index: i }, `obj-error-${i}`);
}

function currentModel() {
  return state.models.find((m) => m.id === state.model) || null;
}

function addRelationship(ev) {
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

function changeRelationship(k, part, value) {
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

function removeRelationship(k) {
  const cur = state.cur;
  const g = cloneGraph(cur.graph);
  const [s, p, o] = g.relationships.splice(k, 1)[0];
  fresh(g, cur.pins, cur.seed, `remove ${g.objects[s]} ${p} ${g.objects[o]} (new layout)`,
        `rel-error-${k}`);
}

function newSeed() {
  const cur = state.cur;
  const seed = Math.floor(Math.random() * 2 ** 31);
  fresh(cur.graph, cur.pins, seed, `new seed ${seed}`, "model-error");
}

async function fourSamples() {
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

function adoptSample(k) {
  const r = state.samples, cur = state.cur;
  const s = r.samples[k];
  const result = { ...r, seed: s.seed, image: s.image };
  push({ graph: cloneGraph(cur.graph), pins: [...cur.pins], seed: s.seed,
         base: graphWithPins(cur.graph, cur.pins), edits: [], result, label: `sample with seed ${s.seed}`,
         kind: "new" });
}

function loadJSONText(text, source) {
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

async function switchModel(id) {
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

function setVocab(v) {
  state.vocab = v;
  const fill = (id, names) => $(id).replaceChildren(...names.map((n) => new Option(n, n)));
  fill("object-names", v.objects);
  fill("pred-names", v.predicates);
}

// ------------------------------------------------------------------ downloads
function download(href, name) {
  const a = document.createElement("a");
  a.href = href;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
}

function baseName() {
  return `sg2img_seed${state.cur.seed}` + (state.cur.edits.length ? `_edit${state.cur.edits.length}` : "");
}

async function downloadSheet() {
  const cur = state.cur;
  if (!cur.result) return;
  await run(async () => {
    const r = cur.edits.length
      ? await api("/api/manipulate", { model: state.model, graph: cur.base, edits: cur.edits, seed: cur.seed, include: ["sheet"] })
      : await api("/api/generate", { model: state.model, graph: cur.base, seed: cur.seed, include: ["sheet"] });
    download(r.sheet, `${baseName()}_sheet.png`);
  }, "model-error");
}

function downloadJSON() {
  const g = graphWithPins(state.cur.graph, state.cur.pins);
  const blob = new Blob([JSON.stringify(g, null, 2) + "\n"], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  download(url, "scene_graph.json");
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ------------------------------------------------------------------ rendering
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "on") for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

function objectOptions(names, selected) {
  return names.map((n, i) => { const o = new Option(`${i} ${n}`, String(i)); o.selected = i === selected; return o; });
}

function colorOf(i) {
  const r = state.cur.result;
  return (r && r.objects[i] && r.objects[i].color) || "#888";
}

function textColor(hex) {
  const n = parseInt(hex.slice(1), 16);
  const luma = 0.299 * (n >> 16) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255);
  return luma > 150 ? "#111" : "#fff";
}

function render(full = true) {
  const cur = state.cur;
  const names = cur.graph.objects;
  document.body.classList.toggle("no-graph", !names.length || !cur.result);

  // objects
  $("obj-count").textContent = names.length ? `(${names.length})` : "";
  const canResample = !!(state.features.resample_object && currentModel()?.resample_object);
  $("objects").replaceChildren(...names.map((name, i) => {
    const pinned = !!cur.pins[i];
    const sw = el("span", { className: "swatch", title: "class colour" });
    sw.style.background = colorOf(i);
    const input = el("input", { id: `obj-name-${i}`, value: name, "aria-label": `object ${i} name`,
                                on: { change: (e) => renameObject(i, e.target), focus: () => select(i) } });
    input.setAttribute("list", "object-names");
    const pin = el("button", {
      type: "button", className: "pin" + (pinned ? " on" : ""), textContent: pinned ? "pinned ✕" : "free",
      title: pinned ? "Unpin: let the model place it again" : "Drag its box in the layout to pin it",
      disabled: !pinned, dataset: { testid: `unpin-${i}` }, on: { click: () => unpin(i) },
    });
    const del = el("button", { type: "button", className: "icon", textContent: "×", title: `remove ${name}`,
                               "aria-label": `remove object ${i}`, on: { click: () => removeObject(i) } });
    const err = el("div", { id: `obj-error-${i}`, className: "error", dataset: { testid: `obj-error-${i}` } });
    const another = canResample ? [el("button", {
      type: "button", className: "icon resample", textContent: "↻", disabled: !cur.base,
      title: `Another look for ${name}: new noise for this object only; its box, its mask and everything else stay`,
      "aria-label": `another look for object ${i}`, dataset: { testid: `resample-${i}` },
      on: { click: () => resampleObject(i) },
    })] : [];
    return el("li", { className: "obj-row" + (canResample ? " can-resample" : "") + (state.selected === i ? " selected" : "") },
              sw, el("span", { className: "idx", textContent: i }), input, pin, ...another, del, err);
  }));

  // relationships
  const rels = cur.graph.relationships;
  $("rel-count").textContent = rels.length ? `(${rels.length})` : "";
  $("relationships").replaceChildren(...rels.map(([s, p, o], k) => {
    const ss = el("select", { "aria-label": `relationship ${k} subject`, on: { change: (e) => changeRelationship(k, "s", e.target.value) } },
                  ...objectOptions(names, s));
    const pi = el("input", { id: `rel-p-${k}`, value: p, "aria-label": `relationship ${k} predicate`,
                             on: { change: (e) => changeRelationship(k, "p", e.target.value) } });
    pi.setAttribute("list", "pred-names");
    const os = el("select", { "aria-label": `relationship ${k} object`, on: { change: (e) => changeRelationship(k, "o", e.target.value) } },
                  ...objectOptions(names, o));
    const del = el("button", { type: "button", className: "icon", textContent: "×", title: "remove relationship",
                               "aria-label": `remove relationship ${k}`, on: { click: () => removeRelationship(k) } });
    const err = el("div", { id: `rel-error-${k}`, className: "error" });
    return el("li", { className: "rel-row" }, ss, pi, os, del, err);
  }));

  // add forms
  const keepSel = (id, opts, fallback) => {
    const old = $(id).value;
    $(id).replaceChildren(...opts);
    const keep = $(id).dataset.touched && [...$(id).options].some((o) => o.value === old);
    if (keep) $(id).value = old; else if (fallback !== undefined) $(id).value = fallback;
  };
  const preds = state.vocab.predicates;
  keepSel("add-pred", [new Option("no relationship", ""), ...preds.map((p) => new Option(p, p))],
          preds.includes("inside") ? "inside" : preds[0] || "");
  keepSel("add-target", objectOptions(names, 0), names.length > 1 ? "1" : "0");
  $("add-pred").disabled = $("add-target").disabled = !names.length;
  keepSel("rel-s", objectOptions(names, 0), "0");
  keepSel("rel-o", objectOptions(names, Math.min(1, names.length - 1)), String(Math.min(1, Math.max(0, names.length - 1))));

  // json
  if (full || document.activeElement !== $("json")) {
    $("json").value = formatGraph(graphWithPins(cur.graph, cur.pins));
  }

  // pictures
  const r = cur.result;
  const setImg = (id, src) => { if (src) $(id).src = src; else $(id).removeAttribute("src"); };
  setImg("graph-img", r && r.graph_image);
  setImg("layout-img", r && r.layout_masks);
  setImg("image", r && r.image);
  $("image-size").textContent = r ? `${r.image_size}×${r.image_size} px, the model's size` : "";
  $("seed").textContent = cur.seed ?? "–";
  renderBoxes();

  // samples
  $("samples").hidden = !state.samples;
  if (state.samples) {
    $("sample-list").replaceChildren(...state.samples.samples.map((s, k) =>
      el("button", { type: "button", className: "sample" + (s.seed === cur.seed ? " current" : ""),
                     dataset: { testid: `sample-${k}` }, on: { click: () => adoptSample(k) } },
         el("img", { src: s.image, alt: `sample ${k}` }), el("span", { textContent: `seed ${s.seed}` }))));
  }

  // history
  const entry = (s, cls) => el("li", { className: cls }, s.label, el("span", { className: "kind " + s.kind, textContent: s.kind === "edit" ? "edit" : "new layout" }));
  $("history").replaceChildren(...state.undo.map((s) => entry(s, "")), entry(cur, "current"),
                               ...[...state.redo].reverse().map((s) => entry(s, "future")));
  $("history").scrollTop = $("history").scrollHeight;
  $("reproduce").replaceChildren();
  if (r && !cur.edits.length) {
    $("reproduce").append("Same image from the command line: save the JSON, then ",
                          el("code", { textContent: `sg2img generate scene_graph.json --seed ${cur.seed}` + (state.model !== state.models[0]?.id ? " --checkpoint …" : "") }));
  } else if (r) {
    $("reproduce").append(`${cur.edits.length} edit${cur.edits.length > 1 ? "s" : ""} from the last new layout, all with seed ${cur.seed}.`);
  }

  // buttons
  const has = !!(r && names.length);
  $("undo").disabled = state.busy || !state.undo.length;
  $("redo").disabled = state.busy || !state.redo.length;
  for (const id of ["dl-image", "dl-layout", "dl-sheet", "new-seed", "samples-btn"]) $(id).disabled = state.busy || !has;
  $("dl-json").disabled = state.busy || !names.length;
}

// sg2im's JSON, one relationship and one box per line.
function formatGraph(g) {
  const j = (x) => (Array.isArray(x) ? `[${x.map(j).join(", ")}]` : JSON.stringify(x));
  const lines = [`  "objects": ${j(g.objects)}`];
  const list = (key, items) => items.length
    ? `  "${key}": [\n${items.map((x) => "    " + j(x)).join(",\n")}\n  ]` : `  "${key}": []`;
  lines.push(list("relationships", g.relationships));
  if (g.boxes) lines.push(list("boxes", g.boxes));
  return `{\n${lines.join(",\n")}\n}\n`;
}

function select(i) {
  state.selected = i;
  for (const [k, li] of [...$("objects").children].entries()) li.classList.toggle("selected", k === i);
  for (const b of $("boxes").children) b.classList.toggle("selected", Number(b.dataset.index) === i);
}

// ------------------------------------------------------------------ draggable boxes
function renderBoxes() {
  const r = state.cur.result;
  const boxes = $("boxes");
  boxes.replaceChildren();
  if (!r) return;
  // Largest first, so small objects sit on top and stay reachable.
  const order = r.objects.map((o) => o).sort((a, b) => area(b.box) - area(a.box));
  const tags = [];   // label rectangles placed so far, in fractions of the frame
  for (const o of order) {
    const [x0, y0, x1, y1] = o.box;
    const b = el("div", { className: "box" + (o.pinned ? " pinned" : "") + (state.selected === o.index ? " selected" : ""),
                          title: `${o.index} ${o.name}` + (o.pinned ? " (pinned)" : ""),
                          dataset: { index: o.index, testid: `box-${o.index}` } },
                 el("span", { className: "tag", textContent: `${o.index} ${o.name}` + (o.pinned ? " ⚲" : "") }),
                 el("span", { className: "handle", dataset: { testid: `handle-${o.index}` } }));
    b.style.setProperty("--c", o.color);
    b.style.setProperty("--tc", textColor(o.color));
    place(b, [x0, y0, x1, y1]);
    // A label sits above its box; inside it at the top edge; at the bottom when it would
    // cover another label.
    const label = `${o.index} ${o.name}`;
    const w = 0.03 + 0.024 * label.length, h = 0.065;
    let tag = y0 < h ? [x0, y0, x0 + w, y0 + h] : [x0, y0 - h, x0 + w, y0];
    if (y0 < h) b.classList.add("inside-top");
    const hits = (t) => tags.some((u) => t[0] < u[2] && u[0] < t[2] && t[1] < u[3] && u[1] < t[3]);
    if (hits(tag)) {
      b.classList.add("tag-bottom");
      tag = [x0, y1 - h, x0 + w, y1];
    }
    tags.push(tag);
    b.addEventListener("pointerdown", (ev) => startDrag(ev, b, o));
    boxes.append(b);
  }
}

function area(b) { return (b[2] - b[0]) * (b[3] - b[1]); }

function place(div, [x0, y0, x1, y1]) {
  div.style.left = `${x0 * 100}%`;
  div.style.top = `${y0 * 100}%`;
  div.style.width = `${(x1 - x0) * 100}%`;
  div.style.height = `${(y1 - y0) * 100}%`;
}

function startDrag(ev, div, o) {
  if (state.busy || ev.button !== 0) return;
  ev.preventDefault();
  select(o.index);
  const frame = $("layout-frame").getBoundingClientRect();
  const resize = ev.target.classList.contains("handle");
  const start = [ev.clientX, ev.clientY];
  const b0 = [...o.box];
  let box = b0;
  const MIN = 0.03;
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  div.setPointerCapture(ev.pointerId);
  const move = (e) => {
    const dx = (e.clientX - start[0]) / frame.width, dy = (e.clientY - start[1]) / frame.height;
    if (resize) {
      box = [b0[0], b0[1], clamp(b0[2] + dx, b0[0] + MIN, 1), clamp(b0[3] + dy, b0[1] + MIN, 1)];
    } else {
      const w = b0[2] - b0[0], h = b0[3] - b0[1];
      const x0 = clamp(b0[0] + dx, 0, 1 - w), y0 = clamp(b0[1] + dy, 0, 1 - h);
      box = [x0, y0, x0 + w, y0 + h];
    }
    place(div, box);
  };
  const up = () => {
    div.removeEventListener("pointermove", move);
    div.removeEventListener("pointerup", up);
    div.removeEventListener("pointercancel", up);
    const moved = box.some((v, k) => Math.abs(v - b0[k]) > 0.005);
    if (moved) {
      const r3 = (v) => Math.round(clamp(v, 0, 1) * 1000) / 1000;
      moveBox(o.index, box.map(r3));
    }
  };
  div.addEventListener("pointermove", move);
  div.addEventListener("pointerup", up);
  div.addEventListener("pointercancel", up);
}

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
