"""The evaluation report: a Markdown table of an :func:`evaluate` report, and JSON beside it.

The report itself is a plain dict (run information, ``"metrics"`` keyed by metric name and
``"protocols"`` saying how each was computed); strict JSON has no NaN, so NaN is written null.
"""

from __future__ import annotations

import json
import math
import os
from os import PathLike
from pathlib import Path
from typing import Any

from .faith_tally import markdown_rows as faithfulness_rows
from .relation_swap import markdown_rows as relation_swap_rows


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def report_to_markdown(report: dict[str, Any]) -> str:
    """A Markdown page: run information, then one table row per number."""
    lines = ["# sg2img evaluation", ""]
    keys = ("checkpoint", "box_file", "images", "graphs", "data", "split", "image_size",
            "num_graphs",
            "num_real_images", "num_generated_images", "samples_per_graph", "use_gt_layout",
            "layout_mode", "precision", "seed", "feature_network")
    info = [(k, report[k]) for k in keys if k in report]
    lines += [f"- **{k}**: {_fmt(v)}" for k, v in info]
    lines += ["", "| metric | value | notes |", "|---|---|---|"]
    m = report.get("metrics", {})
    if "layout_recall" in m:
        lr = m["layout_recall"]
        for key, val in lr.items():
            if key.startswith("R@") or key == "mean_iou":
                lines.append(f"| layout {key} | {_fmt(val)} | {lr['num_objects']} objects |")
        for size_bin, r in lr.get("by_size", {}).items():
            recalls = ", ".join(f"{k} {_fmt(v)}" for k, v in r.items() if k.startswith("R@"))
            lines.append(f"| layout, objects of {size_bin} | {recalls} | {r['num_objects']} "
                         f"objects |")
    if "layout_recall_baseline" in m:
        lb = m["layout_recall_baseline"]
        for key, val in lb.items():
            if key.startswith("R@") or key == "mean_iou":
                lines.append(f"| layout baseline (mean class box) {key} | {_fmt(val)} | "
                             f"{lb['num_objects']} objects |")
    if "layout" in m:
        lay = m["layout"]
        for name in ("mode", "sample", "box_file", "ground_truth"):
            if name not in lay:
                continue
            v = lay[name]
            lines.append(f"| layout ({name}): relation satisfaction | "
                         f"{_fmt(v['relation_satisfaction'])} | {v['num_geometric_triples']} "
                         f"geometric triples |")
            if name != "ground_truth":
                lines.append(f"| layout ({name}): mean abs log area ratio, all / worst class | "
                             f"{_fmt(v['mean_abs_log_area_ratio'])} / "
                             f"{_fmt(v['worst_class_mean_abs_log_area_ratio'])} | worst: "
                             f"{v['worst_class']} |")
                recalls = ", ".join(f"{k} {_fmt(v[k])}" for k in v if k.startswith("R@"))
                small = ", ".join(f"{k[6:]} {_fmt(v[k])}" for k in v if k.startswith("small_R@"))
                lines.append(f"| layout ({name}): recall, all / small objects | {recalls} / "
                             f"{small} | {v['num_small_objects']} small objects |")
        for part, r in lay.get("small_swap", {}).items():
            lines.append(f"| layout (mode): small objects' R@0.3, {part} | {_fmt(r)} | "
                         f"diagnostics |")
        if "layout_diversity_mean_iou" in lay:
            lines.append(f"| layout diversity: mean IoU between two sampled layouts | "
                         f"{_fmt(lay['layout_diversity_mean_iou'])} | 1 = identical |")
    if "fid" in m:
        lines.append(f"| FID | {_fmt(m['fid']['fid'], 2)} | {m['fid']['feature_network']}; "
                     f"{m['fid']['num_real_images']} real vs "
                     f"{m['fid']['num_generated_images']} generated |")
    if "is" in m:
        lines.append(f"| IS | {_fmt(m['is']['is_mean'], 2)} ± {_fmt(m['is']['is_std'], 2)} | "
                     f"{m['is']['feature_network']}; {m['is']['splits']} splits |")
    if "obj_acc" in m:
        oa = m["obj_acc"]
        lines.append(f"| object classification accuracy | {_fmt(oa['accuracy'])} | Grid2Im "
                     f"protocol, {oa['num_crops']} crops; real crops: "
                     f"{_fmt(oa['real_crop_accuracy'])} |")
        if oa.get("own_boxes_accuracy") is not None:
            lines.append(f"| object accuracy at the model's own boxes | "
                         f"{_fmt(oa['own_boxes_accuracy'])} | each object cropped where the "
                         f"image's layout put it |")
        for size_bin, r in oa.get("by_size", {}).items():
            lines.append(f"| object accuracy, objects of {size_bin} | {_fmt(r['accuracy'])} | "
                         f"{r['num_crops']} crops; real crops: "
                         f"{_fmt(r.get('real_crop_accuracy'))} |")
    if "attr_acc" in m:
        aa = m["attr_acc"]
        lines.append(f"| attribute accuracy (colour) | {_fmt(aa['accuracy'])} | "
                     f"{aa['num_crops']} crops; real crops: {_fmt(aa['real_crop_accuracy'])}; "
                     f"ratio {_fmt(aa['ratio'], 3)} |")
    if "attr_swap" in m:
        sw = m["attr_swap"]
        lines.append(f"| attribute swap: follows the change | {_fmt(sw['follow_rate'])} | "
                     f"{sw['num_swaps']} swaps, layout frozen |")
        if sw.get("num_swaps"):
            lines.append(f"| attribute swap: pixel change outside / inside the object | "
                         f"{_fmt(sw['outside_change'])} / {_fmt(sw['inside_change'])} | "
                         f"mean abs. change, pixels in [0, 1] |")
    if "diversity" in m:
        dv = m["diversity"]
        lines.append(f"| diversity: mean_pixel_distance | {_fmt(dv['mean_pixel_distance'])} | "
                     f"weight-free, {dv['num_pairs']} pairs |")
        note = "" if dv["lpips"] is not None else "LPIPS weights missing (see JSON)"
        lines.append(f"| diversity: LPIPS | {_fmt(dv['lpips'])} | {note} |")
        if dv.get("feature_distance") is not None:
            lines.append(f"| diversity: feature distance (ratio to two real scenes) | "
                         f"{_fmt(dv['feature_distance'])} ({_fmt(dv['feature_distance_ratio'])}) "
                         f"| {dv['feature_network']} |")
    if "faithfulness" in m:
        lines += faithfulness_rows(m["faithfulness"])
    if "relation_swap" in m:
        lines += relation_swap_rows(m["relation_swap"])
    lines += class_rows(m)
    lines += ["", "## Protocols", ""]
    lines += [f"- **{k}**: {v}" for k, v in report.get("protocols", {}).items()]
    return "\n".join(lines) + "\n"


def class_rows(metrics: dict[str, Any]) -> list[str]:
    """A "By class" section: what each class gets right and wrong, worst first.

    Read from the per-class figures of ``faithfulness`` (the detector: found, its colour at the
    found box, drawn where the graph did not ask) and ``attr_acc`` (colour at the box the
    image was drawn from); empty when neither was computed. Real images' figures, where
    scored, follow each generated one after a slash.
    """
    faith = metrics.get("faithfulness", {})
    gen, real = (faith.get(side, {}).get("by_class", {}) for side in ("generated", "real"))
    colour = metrics.get("attr_acc", {}).get("by_class", {})
    names = sorted(set(gen) | set(colour))
    if not names:
        return []

    def pair(a: float | None, b: float | None) -> str:
        return _fmt(a, 3) + (f" / {_fmt(b, 3)}" if b is not None else "")

    def worst_first(name: str) -> tuple[float, str]:
        recall = gen.get(name, {}).get("recall")
        key = recall if recall is not None and recall == recall else 2.0
        return key, name

    lines = ["", "## By class", "",
             "Generated / real. *found*: graph objects the detector finds; *colour, found*: "
             "the colour at the detector's box; *colour, own box*: at the box the image was "
             "drawn from; *unasked*: detections of the class in images whose graph does not "
             "name it.", "",
             "| class | objects | found | colour, found | colour, own box | unasked |",
             "|---|---|---|---|---|---|"]
    for name in sorted(names, key=worst_first):
        g, r, c = gen.get(name, {}), real.get(name, {}), colour.get(name, {})
        n = g.get("num_objects", c.get("num_crops"))
        colour_found = pair(g.get("colour_accuracy"), r.get("colour_accuracy")) \
            if g.get("num_colour_objects") else "n/a"
        lines.append(f"| {name} | {_fmt(n)} | {pair(g.get('recall'), r.get('recall'))} | "
                     f"{colour_found} | "
                     f"{pair(c.get('accuracy'), c.get('real_crop_accuracy'))} | "
                     f"{pair(g.get('hallucinated'), r.get('hallucinated'))} |")
    return lines


def _json_safe(value: Any) -> Any:
    """NaN / inf -> None, recursively: strict JSON has no NaN (e.g. an empty size bin)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_report(report: dict[str, Any], out_path: str | PathLike) -> tuple[Path, Path]:
    """Write the report as JSON (NaN written as null) and as Markdown.

    Args:
        report: from :func:`evaluate` (extra keys such as ``checkpoint`` are kept).
        out_path: ``REPORT.json`` (the Markdown goes to ``REPORT.md``), a path without a
            ``.json`` suffix, to which ``.json`` and ``.md`` are appended, or a folder (an
            existing one, or any path ending in ``/``), which gets ``report.json`` and
            ``report.md``.

    Returns:
        The JSON and Markdown paths.
    """
    is_folder = str(out_path).endswith(("/", os.sep)) or Path(out_path).is_dir()
    out_path = Path(out_path)
    if is_folder:
        base = out_path / "report"
    else:
        base = out_path.with_suffix("") if out_path.suffix == ".json" else out_path
    json_path = base.parent / (base.name + ".json")
    md_path = base.parent / (base.name + ".md")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(_json_safe(report), indent=2, allow_nan=False) + "\n")
    md_path.write_text(report_to_markdown(report))
    return json_path, md_path

