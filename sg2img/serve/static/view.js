// Drawing the page from the state: the object and relationship lists, the pictures, the
// history, and the draggable boxes over the layout. The controls call the operations in
// `actions`, which app.js fills in (ops.js draws with render(), so view.js cannot import it).

import { $, state, graphWithPins, currentModel, attributesOf, objectLabel } from "./core.js";
import { brokenRelationships } from "./geometry.js";

export const actions = {};

// ------------------------------------------------------------------ rendering
export function el(tag, props = {}, ...children) {
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

export function objectOptions(names, selected) {
  return names.map((n, i) => { const o = new Option(`${i} ${n}`, String(i)); o.selected = i === selected; return o; });
}

export function colorOf(i) {
  const r = state.cur.result;
  return (r && r.objects[i] && r.objects[i].color) || "#888";
}

export function textColor(hex) {
  const n = parseInt(hex.slice(1), 16);
  const luma = 0.299 * (n >> 16) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255);
  return luma > 150 ? "#111" : "#fff";
}

export function render(full = true) {
  const cur = state.cur;
  const names = cur.graph.objects;
  document.body.classList.toggle("no-graph", !names.length || !cur.result);

  // objects
  $("obj-count").textContent = names.length ? `(${names.length})` : "";
  $("obj-hint").hidden = !(names.length && state.vocab.attributes && state.vocab.attributes.length);
  const canResample = !!(state.features.resample_object && currentModel()?.resample_object);
  $("objects").replaceChildren(...names.map((name, i) => objectRow(cur, name, i, canResample)));

  // relationships
  const rels = cur.graph.relationships;
  $("rel-count").textContent = rels.length ? `(${rels.length})` : "";
  $("relationships").replaceChildren(...rels.map(([s, p, o], k) => {
    const ss = el("select", { "aria-label": `relationship ${k} subject`, on: { change: (e) => actions.changeRelationship(k, "s", e.target.value) } },
                  ...objectOptions(names, s));
    const ps = el("select", { id: `rel-p-${k}`, "aria-label": `relationship ${k} predicate`,
                              dataset: { testid: `rel-p-${k}` },
                              on: { change: (e) => actions.changeRelationship(k, "p", e.target.value) } },
                  ...predicateOptions(p));
    const os = el("select", { "aria-label": `relationship ${k} object`, on: { change: (e) => actions.changeRelationship(k, "o", e.target.value) } },
                  ...objectOptions(names, o));
    const del = el("button", { type: "button", className: "icon", textContent: "×", title: "remove relationship",
                               "aria-label": `remove relationship ${k}`, on: { click: () => actions.removeRelationship(k) } });
    const err = el("div", { id: `rel-error-${k}`, className: "error" });
    return el("li", { className: "rel-row" }, ss, ps, os, del, err);
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
  keepSel("rel-p", [new Option("predicate…", ""), ...preds.map((p) => new Option(p, p))], "");
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
  $("sample").textContent = cur.sample || 0;
  for (const o of $("dl-scale").options) {
    o.textContent = r ? `${o.value}× · ${o.value * r.image_size} px` : `${o.value}×`;
  }
  renderBoxes();
  renderWarnings();

  // samples
  $("samples").hidden = !state.samples;
  if (state.samples) {
    $("sample-list").replaceChildren(...state.samples.samples.map((smp, k) => {
      const seed = smp.seed ?? state.samples.seed, sample = smp.sample ?? 0;
      const current = seed === cur.seed && sample === (cur.sample || 0);
      return el("button", { type: "button", className: "sample" + (current ? " current" : ""),
                            dataset: { testid: `sample-${k}`, seed, sample }, on: { click: () => actions.adoptSample(k) } },
                el("img", { src: smp.image, alt: `sample ${k}` }),
                el("span", { textContent: smp.sample === undefined ? `seed ${seed}` : `sample ${sample}` }));
    }));
  }

  // history, numbered (the numbers are text, so that long ones are never cut)
  let n = 0;
  const entry = (s, cls) => el("li", { className: cls },
                               el("span", { className: "num", textContent: `${++n}` }),
                               el("span", { className: "what", textContent: s.label }),
                               el("span", { className: "kind " + s.kind, textContent: s.kind === "edit" ? "edit" : "new layout" }));
  $("history").replaceChildren(...state.undo.map((s) => entry(s, "")), entry(cur, "current"),
                               ...[...state.redo].reverse().map((s) => entry(s, "future")));
  $("history").scrollTop = $("history").scrollHeight;
  $("reproduce").replaceChildren();
  if (r && !cur.edits.length) {
    $("reproduce").append("Same image from the command line: download the JSON, then ",
                          el("code", { textContent: commandLine(), dataset: { testid: "command" } }));
  } else if (r) {
    $("reproduce").append(`${cur.edits.length} edit${cur.edits.length > 1 ? "s" : ""} from the last new layout (seed ${cur.seed}, sample ${cur.sample || 0}).`);
  }

  // buttons
  const has = !!(r && names.length);
  $("undo").disabled = state.busy || !state.undo.length;
  $("redo").disabled = state.busy || !state.redo.length;
  for (const id of ["dl-image", "dl-layout", "dl-sheet", "new-seed", "samples-btn", "export-gligen",
                    "export-seg", "export-coco"]) $(id).disabled = state.busy || !has;
  $("dl-json").disabled = state.busy || !names.length;
}

// One object's row: swatch, index, name, pin, another look, remove; below it the object's
// attributes and a picker of the attributes its class takes.
function objectRow(cur, name, i, canResample) {
  const pinned = !!cur.pins[i];
  const sw = el("span", { className: "swatch", title: "class colour" });
  sw.style.background = colorOf(i);
  const input = el("input", { id: `obj-name-${i}`, value: name, "aria-label": `object ${i} name`,
                              on: { change: (e) => actions.renameObject(i, e.target), focus: () => select(i) } });
  input.setAttribute("list", "object-names");
  const pin = el("button", {
    type: "button", className: "pin" + (pinned ? " on" : ""), textContent: pinned ? "pinned ✕" : "free",
    title: pinned ? "Unpin: let the model place it again" : "Drag its box in the layout to pin it",
    disabled: !pinned, dataset: { testid: `unpin-${i}` }, on: { click: () => actions.unpin(i) },
  });
  const del = el("button", { type: "button", className: "icon", textContent: "×", title: `remove ${name}`,
                             "aria-label": `remove object ${i}`, on: { click: () => actions.removeObject(i) } });
  const err = el("div", { id: `obj-error-${i}`, className: "error", dataset: { testid: `obj-error-${i}` } });
  const another = canResample ? [el("button", {
    type: "button", className: "icon resample", textContent: "↻", disabled: !cur.base,
    title: `Another look for ${name}: new noise for this object only; its box, its mask and everything else stay`,
    "aria-label": `another look for object ${i}`, dataset: { testid: `resample-${i}` },
    on: { click: () => actions.resampleObject(i) },
  })] : [];
  return el("li", { className: "obj-row" + (canResample ? " can-resample" : "") + (state.selected === i ? " selected" : "") },
            sw, el("span", { className: "idx", textContent: i }), input, pin, ...another, del,
            ...attributeLine(cur, name, i), err);
}

// The attributes an object of class `name` can take: the model's list for that class, all of
// the model's attributes when it has no such list, null when the model has none.
export function attributeChoices(name) {
  const all = state.vocab.attributes;
  if (!all || !all.length) return null;
  const per = state.vocab.class_attributes;
  return per && typeof per === "object" ? (Array.isArray(per[name]) ? per[name] : []) : all;
}

function attributeLine(cur, name, i) {
  const has = attributesOf(cur.graph, i);
  const choices = attributeChoices(name);
  if (!has.length && !(choices && choices.length)) return [];
  const chips = has.map((a) => el("button", {
    type: "button", className: "attr", textContent: `${a} ×`, title: `remove ${a} from ${name}`,
    "aria-label": `remove attribute ${a} of object ${i}`, disabled: !cur.base,
    dataset: { testid: `attr-${i}-${a}` },
    on: { click: () => actions.setAttributes(i, has.filter((x) => x !== a)) },
  }));
  const free = (choices || []).filter((a) => !has.includes(a));
  const picker = free.length ? [el("select", {
    className: "attr-add", "aria-label": `add an attribute to object ${i}`, disabled: !cur.base,
    title: `attributes a ${name} can have`, dataset: { testid: `attr-add-${i}` },
    on: { change: (e) => { if (e.target.value) actions.setAttributes(i, [...has, e.target.value]); } },
  }, new Option("+ attribute", ""), ...free.map((a) => new Option(a, a)))] : [];
  // Without attributes the picker shows only while the object is selected.
  return [el("div", { className: "attrs" + (has.length ? "" : " none") }, ...chips, ...picker)];
}

export function predicateOptions(selected) {
  const preds = state.vocab.predicates.includes(selected) ? state.vocab.predicates
    : [selected, ...state.vocab.predicates];
  return preds.map((p) => { const o = new Option(p, p); o.selected = p === selected; return o; });
}

// The command line that makes the picture shown from the downloaded JSON.
export function commandLine() {
  const cur = state.cur;
  let cmd = `sg2img generate scene_graph.json --seed ${cur.seed} --sample ${cur.sample || 0}`;
  if (state.model !== state.defaultModel) {
    const m = currentModel();
    const path = m ? m.label : state.model;
    cmd += ` --checkpoint ${/^[\w./+-]+$/.test(path) ? path : JSON.stringify(path)}`;
  }
  return cmd;
}

// Pinned boxes against the graph's relationships: a warning, not a refusal.
export function renderWarnings() {
  const cur = state.cur, r = cur.result;
  const broken = r ? brokenRelationships(cur.graph.relationships, r.objects.map((o) => o.box), cur.pins) : [];
  const box = $("layout-warning");
  box.replaceChildren(...broken.map((b) => {
    const who = (i) => `${objectLabel(cur.graph, i)}${cur.pins[i] ? " (pinned)" : ""}`;
    return el("div", { textContent: `${who(b.s)} is ${b.actual} ${who(b.o)}, but the graph says ` +
                                    `${objectLabel(cur.graph, b.s)} ${b.predicate} ${objectLabel(cur.graph, b.o)}` });
  }));
  box.hidden = !broken.length;
}

// sg2im's JSON, one relationship and one box per line.
export function formatGraph(g) {
  const j = (x) => (Array.isArray(x) ? `[${x.map(j).join(", ")}]` : JSON.stringify(x));
  const lines = [`  "objects": ${j(g.objects)}`];
  const list = (key, items) => items.length
    ? `  "${key}": [\n${items.map((x) => "    " + j(x)).join(",\n")}\n  ]` : `  "${key}": []`;
  lines.push(list("relationships", g.relationships));
  if (g.boxes) lines.push(list("boxes", g.boxes));
  if (g.attributes) lines.push(list("attributes", g.attributes));
  return `{\n${lines.join(",\n")}\n}\n`;
}

export function select(i) {
  state.selected = i;
  for (const [k, li] of [...$("objects").children].entries()) li.classList.toggle("selected", k === i);
  for (const b of $("boxes").children) b.classList.toggle("selected", Number(b.dataset.index) === i);
}

// ------------------------------------------------------------------ draggable boxes
export function renderBoxes() {
  const r = state.cur.result;
  const boxes = $("boxes");
  boxes.replaceChildren();
  if (!r) return;
  // Largest first, so small objects sit on top and stay reachable.
  const order = r.objects.map((o) => o).sort((a, b) => area(b.box) - area(a.box));
  const tags = [];   // label rectangles placed so far, in fractions of the frame
  const graph = state.cur.graph;
  for (const o of order) {
    const [x0, y0, x1, y1] = o.box;
    const label = `${o.index} ${graph.objects[o.index] === o.name ? objectLabel(graph, o.index) : o.name}`;
    const b = el("div", { className: "box" + (o.pinned ? " pinned" : "") + (state.selected === o.index ? " selected" : ""),
                          title: label + (o.pinned ? " (pinned)" : ""),
                          dataset: { index: o.index, testid: `box-${o.index}` } },
                 el("span", { className: "tag", textContent: label + (o.pinned ? " ⚲" : ""),
                              dataset: { testid: `tag-${o.index}` } }),
                 el("span", { className: "handle", dataset: { testid: `handle-${o.index}` } }));
    b.style.setProperty("--c", o.color);
    b.style.setProperty("--tc", textColor(o.color));
    place(b, [x0, y0, x1, y1]);
    // A label sits above its box; inside it at the top edge; at the bottom when it would
    // cover another label.
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

// While a box is dragged: does its new place break a relationship of the graph?
function dragWarning(div, i, box) {
  const cur = state.cur;
  const boxes = cur.result.objects.map((o) => o.box);
  boxes[i] = box;
  const pinned = cur.pins.map((p, k) => !!p || k === i);
  const broken = brokenRelationships(cur.graph.relationships, boxes, pinned)
    .filter((b) => b.s === i || b.o === i);
  div.classList.toggle("conflict", broken.length > 0);
  div.title = broken.length
    ? broken.map((b) => `here ${cur.graph.objects[b.s]} is ${b.actual} ${cur.graph.objects[b.o]}; the graph says ${b.predicate}`).join("\n")
    : `${i} ${objectLabel(cur.graph, i)}`;
}

export function area(b) { return (b[2] - b[0]) * (b[3] - b[1]); }

export function place(div, [x0, y0, x1, y1]) {
  div.style.left = `${x0 * 100}%`;
  div.style.top = `${y0 * 100}%`;
  div.style.width = `${(x1 - x0) * 100}%`;
  div.style.height = `${(y1 - y0) * 100}%`;
}

export function startDrag(ev, div, o) {
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
    dragWarning(div, o.index, box);
  };
  const up = () => {
    div.removeEventListener("pointermove", move);
    div.removeEventListener("pointerup", up);
    div.removeEventListener("pointercancel", up);
    const moved = box.some((v, k) => Math.abs(v - b0[k]) > 0.005);
    if (moved) {
      const r3 = (v) => Math.round(clamp(v, 0, 1) * 1000) / 1000;
      actions.moveBox(o.index, box.map(r3));
    }
  };
  div.addEventListener("pointermove", move);
  div.addEventListener("pointerup", up);
  div.addEventListener("pointercancel", up);
}
