// Editor state, snapshots of the graph, and the server: requests and the errors they show.
// Loaded by app.js; imports nothing.

export const $ = (id) => document.getElementById(id);

export const state = {
  models: [], model: null, limits: {}, features: {},
  vocab: { objects: [], predicates: [] },
  cur: null,          // the snapshot shown
  undo: [], redo: [],
  busy: false, selected: null, samples: null,
};

// ------------------------------------------------------------------ snapshots
export function emptySnapshot(seed) {
  return { graph: { objects: [], relationships: [] }, pins: [], seed, base: null, edits: [],
           result: null, label: "empty graph", kind: "new" };
}

export function cloneGraph(g) {
  return { objects: [...g.objects], relationships: g.relationships.map((r) => [...r]) };
}

export function graphWithPins(graph, pins) {
  const g = cloneGraph(graph);
  if (pins.some((b) => b)) g.boxes = pins.map((b) => (b ? [...b] : null));
  return g;
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
