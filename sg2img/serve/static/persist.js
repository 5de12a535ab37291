// Keeping the editor's state: in localStorage (a reload finds it), in a link (the state in
// the location hash, deflated) and in a file. The state is the history of snapshots without
// their pictures: graph, pins, seed, sample and the edit chain of each; the pictures are asked
// of the server again when shown.
//
// Everything read back is untrusted (a link can come from anyone): its size is bounded before
// and after inflating, and `parseState` checks every field and builds new objects from them,
// so a bad state is refused with a message naming the field, never half-used.

import { state, cloneGraph } from "./core.js";

export const FORMAT = "sg2img-editor-state";
export const VERSION = 1;
export const STORAGE_KEY = "sg2img.editor.state.v1";
export const HASH_PREFIX = "#state=";
export const MAX_HASH_CHARS = 65536;       // characters of a link's state
export const MAX_STATE_BYTES = 262144;     // bytes of a state's JSON (inflated, or in a file)
export const MAX_HISTORY = 40;             // snapshots kept before and after the current one
const MAX_NAME = 200, MAX_LABEL = 300, MAX_ATTRIBUTES = 16, MAX_EDIT_CHARS = 4096;
const MAX_SEED = 2 ** 53 - 1, MAX_SAMPLE = 2 ** 31 - 1;
// Bounds when the server's limits are not known; the server checks its own limits again.
const FALLBACK = { max_objects: 32, max_relationships: 256, max_edits: 64 };

export class StateError extends Error {}

// ------------------------------------------------------------------ writing
function snapshotData(s) {
  return { graph: cloneGraph(s.graph), pins: s.pins.map((b) => (b ? [...b] : null)),
           seed: s.seed, sample: s.sample || 0, base: s.base, edits: s.edits, label: s.label,
           kind: s.kind };
}

// The state as plain JSON data: the whole history (`full`), or only the current snapshot and
// its edit chain (what a link carries).
export function stateData(full = true) {
  const before = full ? state.undo.slice(-MAX_HISTORY) : [];
  const after = full ? [...state.redo].reverse().slice(0, MAX_HISTORY) : [];
  const history = [...before, state.cur, ...after].map(snapshotData);
  return { format: FORMAT, version: VERSION, model: state.model, current: before.length, history };
}

// Keep the state for the next load of the page; the initial page (nothing done yet) is not
// kept. A full storage drops the oldest history first, then gives up quietly.
export function saveLocal() {
  if (!state.cur || state.cur.initial) return;
  const data = stateData(true);
  for (;;) {
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify(data));
      return;
    } catch (e) {
      if (data.history.length <= 1) return;
      data.history.shift();
      data.current = Math.max(0, data.current - 1);
    }
  }
}

export function loadLocal() {
  try { return localStorage.getItem(STORAGE_KEY); } catch (e) { return null; }
}

export function forgetLocal() {
  try { localStorage.removeItem(STORAGE_KEY); } catch (e) { /* storage off: nothing kept */ }
}

// ------------------------------------------------------------------ links
function toBase64Url(bytes) {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 8192) bin += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new StateError("it is not base64url text");
  let bin;
  try {
    bin = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
  } catch (e) {
    throw new StateError("it is not base64url text");
  }
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

async function deflate(text) {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// Inflate at most `limit` bytes: a small link that inflates to gigabytes stops at the limit.
async function inflate(bytes, limit) {
  const reader = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw")).getReader();
  const chunks = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > limit) throw new StateError(`it inflates to more than ${limit} bytes`);
      chunks.push(value);
    }
  } catch (e) {
    reader.cancel().catch(() => {});
    throw e instanceof StateError ? e : new StateError("it is not deflated data");
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) { all.set(c, at); at += c.length; }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(all);
  } catch (e) {
    throw new StateError("it is not UTF-8 text");
  }
}

// The page's address with the current snapshot (and its edit chain) in the hash.
export async function shareURL() {
  const packed = toBase64Url(await deflate(JSON.stringify(stateData(false))));
  if (packed.length > MAX_HASH_CHARS) {
    throw new StateError(`the state is ${packed.length} characters packed, more than a link ` +
                         `takes (${MAX_HASH_CHARS}); save it as a file instead`);
  }
  return location.href.split("#")[0] + HASH_PREFIX + packed;
}

// The JSON text of a link's state (`hash` is location.hash), or a StateError.
export async function hashStateText(hash) {
  const packed = hash.slice(HASH_PREFIX.length);
  if (packed.length > MAX_HASH_CHARS) {
    throw new StateError(`it is ${packed.length} characters long, more than ${MAX_HASH_CHARS}`);
  }
  return inflate(fromBase64Url(packed), MAX_STATE_BYTES);
}

// ------------------------------------------------------------------ reading
const isObject = (x) => x !== null && typeof x === "object" && !Array.isArray(x);
const isInt = (x, lo, hi) => Number.isSafeInteger(x) && x >= lo && x <= hi;

function fail(where, what) {
  throw new StateError(`${where} must be ${what}`);
}

function name(x, where) {
  if (typeof x !== "string" || !x.trim() || x.length > MAX_NAME) fail(where, `a name (text of 1-${MAX_NAME} characters)`);
  return x;
}

function list(x, where, max) {
  if (!Array.isArray(x)) fail(where, "a list");
  if (x.length > max) fail(where, `a list of at most ${max} entries, not ${x.length}`);
  return x;
}

function box(b, where) {
  if (b === null) return null;
  if (!Array.isArray(b) || b.length !== 4 || !b.every((v) => typeof v === "number" && v >= 0 && v <= 1)) {
    fail(where, "null or a box [x0, y0, x1, y1] of numbers in [0, 1]");
  }
  if (!(b[0] < b[2] && b[1] < b[3])) fail(where, "a box with x0 < x1 and y0 < y1");
  return [...b];
}

// A scene graph in sg2im's form; `withBoxes` also takes its "boxes".
function graph(g, where, limits, withBoxes) {
  if (!isObject(g)) fail(where, 'an object with "objects" and "relationships"');
  const objects = list(g.objects, `${where}.objects`, limits.max_objects).map((n, i) => name(n, `${where}.objects[${i}]`));
  const rels = list(g.relationships ?? [], `${where}.relationships`, limits.max_relationships).map((r, k) => {
    const at = `${where}.relationships[${k}]`;
    if (!Array.isArray(r) || r.length !== 3 || !isInt(r[0], 0, objects.length - 1) || !isInt(r[2], 0, objects.length - 1)) {
      fail(at, `[subject, "predicate", object] with object indices 0..${objects.length - 1}`);
    }
    return [r[0], name(r[1], `${at}[1]`), r[2]];
  });
  const out = { objects, relationships: rels };
  if (g.attributes !== undefined && g.attributes !== null) {
    const attrs = list(g.attributes, `${where}.attributes`, objects.length);
    if (attrs.length !== objects.length) fail(`${where}.attributes`, `one list per object (${objects.length})`);
    out.attributes = attrs.map((a, i) => list(a, `${where}.attributes[${i}]`, MAX_ATTRIBUTES)
      .map((n, j) => name(n, `${where}.attributes[${i}][${j}]`)));
  }
  if (withBoxes && g.boxes !== undefined && g.boxes !== null) {
    const boxes = list(g.boxes, `${where}.boxes`, objects.length);
    if (boxes.length !== objects.length) fail(`${where}.boxes`, `one entry per object (${objects.length})`);
    out.boxes = boxes.map((b, i) => box(b, `${where}.boxes[${i}]`));
  }
  return out;
}

function edit(e, where) {
  if (!isObject(e) || typeof e.op !== "string") fail(where, 'an edit object with "op"');
  // The server checks the edit itself (the same parser as `sg2img manipulate`).
  const text = JSON.stringify(e);
  if (text.length > MAX_EDIT_CHARS) fail(where, `an edit of at most ${MAX_EDIT_CHARS} characters`);
  return JSON.parse(text);
}

function snapshot(s, where, limits) {
  if (!isObject(s)) fail(where, "a snapshot object");
  const g = graph(s.graph, `${where}.graph`, limits, false);
  const pins = list(s.pins, `${where}.pins`, g.objects.length).map((b, i) => box(b, `${where}.pins[${i}]`));
  if (pins.length !== g.objects.length) fail(`${where}.pins`, `one entry per object (${g.objects.length})`);
  if (!isInt(s.seed, 0, MAX_SEED)) fail(`${where}.seed`, `an integer seed in 0..${MAX_SEED}`);
  if (!isInt(s.sample ?? 0, 0, MAX_SAMPLE)) fail(`${where}.sample`, `an integer sample number in 0..${MAX_SAMPLE}`);
  const edits = list(s.edits ?? [], `${where}.edits`, limits.max_edits).map((e, k) => edit(e, `${where}.edits[${k}]`));
  const base = s.base === null || s.base === undefined ? null : graph(s.base, `${where}.base`, limits, true);
  if (edits.length && !base) fail(`${where}.base`, "the graph the edits start from");
  if (g.objects.length && !base) fail(`${where}.base`, "the graph with its pins as boxes");
  if (typeof s.label !== "string" || s.label.length > MAX_LABEL) fail(`${where}.label`, `text of at most ${MAX_LABEL} characters`);
  if (s.kind !== "new" && s.kind !== "edit") fail(`${where}.kind`, '"new" or "edit"');
  return { graph: g, pins, seed: s.seed, sample: s.sample ?? 0, base, edits, result: null,
           label: s.label, kind: s.kind };
}

// Check a state (parsed JSON) and build it anew from its checked fields.
//
// Returns {model, current, history}; raises StateError naming the first bad field.
export function parseState(data, limits = {}) {
  const lim = { ...FALLBACK, ...limits };
  if (!isObject(data) || data.format !== FORMAT) fail("the state", `an object with "format": "${FORMAT}"`);
  if (data.version !== VERSION) fail("its version", `${VERSION} (this page's), not ${JSON.stringify(data.version)?.slice(0, 20)}`);
  const history = list(data.history, "history", 2 * MAX_HISTORY + 1);
  if (!history.length) fail("history", "a list of at least one snapshot");
  if (!isInt(data.current, 0, history.length - 1)) fail("current", `a snapshot index in 0..${history.length - 1}`);
  const model = data.model === null || data.model === undefined ? null : name(data.model, "model");
  return { model, current: data.current,
           history: history.map((s, k) => snapshot(s, `history[${k}]`, lim)) };
}

// Parse JSON text of at most MAX_STATE_BYTES into a checked state.
export function parseStateText(text, limits) {
  if (text.length > MAX_STATE_BYTES) throw new StateError(`it is more than ${MAX_STATE_BYTES} bytes`);
  let data;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new StateError(`it is not valid JSON (${e.message})`);
  }
  return parseState(data, limits);
}

// Whether parsed JSON is an editor state (rather than a scene graph).
export function isStateData(data) {
  return isObject(data) && data.format === FORMAT;
}
