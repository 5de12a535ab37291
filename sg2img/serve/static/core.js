// Editor state, snapshots of the graph, and the server: requests and the errors they show.
// Loaded by app.js; imports nothing.

export const $ = (id) => document.getElementById(id);

export const state = {
  models: [], model: null, defaultModel: null, limits: {}, features: {},
  vocab: { objects: [], predicates: [], attributes: null, class_attributes: null },
  cur: null,          // the snapshot shown
  undo: [], redo: [],
  busy: false, selected: null, samples: null,
};

// ------------------------------------------------------------------ snapshots
// A snapshot: `graph` (objects, relationships and, when any object has some, `attributes`),
// `pins` (per object a pinned box or null), `seed` and `sample` (which picture of the seed),
// `base` and `edits` (the chain that made the picture: the edits applied to `base`, the graph
// with its pins as boxes, that a generate request laid out), `result` (the server's answer, or
// null until fetched), `label` and `kind` ("new" layout or "edit").
export function emptySnapshot(seed) {
  return { graph: { objects: [], relationships: [] }, pins: [], seed, sample: 0, base: null,
           edits: [], result: null, label: "empty graph", kind: "new" };
}

// A copy of the graph's objects, relationships and attributes (not its boxes: those are pins).
export function cloneGraph(g) {
  const out = { objects: [...g.objects], relationships: g.relationships.map((r) => [...r]) };
  if (Array.isArray(g.attributes) && g.attributes.some((a) => a && a.length)) {
    out.attributes = g.objects.map((_, i) => [...(g.attributes[i] || [])]);
  }
  return out;
}

export function graphWithPins(graph, pins) {
  const g = cloneGraph(graph);
  if (pins.some((b) => b)) g.boxes = pins.map((b) => (b ? [...b] : null));
  return g;
}

// The graph without its boxes, and its boxes as pins (one entry per object).
export function splitPins(g) {
  const pins = g.boxes ? g.boxes.map((b) => (b ? [...b] : null)) : g.objects.map(() => null);
  return [cloneGraph(g), pins];
}

// An object's attributes, e.g. ["red"] (none: []).
export function attributesOf(graph, i) {
  return (graph.attributes && graph.attributes[i]) || [];
}

// What the page calls an object: its attributes, then its name ("red car").
export function objectLabel(graph, i) {
  return [...attributesOf(graph, i), graph.objects[i]].join(" ");
}

// ------------------------------------------------------------------ server
export class RequestError extends Error {
  constructor(status, error) {
    super(error.message);
    this.status = status;
    this.field = error.field;
    this.suggestions = error.suggestions || [];
    this.detail = error.detail;
  }
}

export async function api(path, body) {
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

export function setStatus(text, kind = "") {
  const el = $("status");
  el.textContent = text;
  el.className = "status " + kind;
}

export function setBusy(busy) {
  state.busy = busy;
  document.body.classList.toggle("busy", busy);
  for (const el of document.querySelectorAll("button, select, input, textarea")) {
    if (busy) { el.dataset.wasDisabled = el.disabled ? "1" : ""; el.disabled = true; }
    else if (el.dataset.wasDisabled !== undefined) { el.disabled = el.dataset.wasDisabled === "1"; delete el.dataset.wasDisabled; }
  }
  if (busy) setStatus("generating…", "busy");
}

export function clearErrors() {
  for (const el of document.querySelectorAll(".error")) el.replaceChildren();
  for (const el of document.querySelectorAll(".invalid")) el.classList.remove("invalid");
}

export function showError(slot, err, onSuggestion) {
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

export function currentModel() {
  return state.models.find((m) => m.id === state.model) || null;
}
