"""What the editor server's request checks cost: the strict body parser and the Host/Origin
check, against plain ``json.loads``.

Bodies, each at most the server's 256 KiB limit:

* ``largest_graph``: 32 objects, 256 relationships and a box per object (the largest graph
  the server accepts);
* ``flat_256k``: a 256 KiB list of small integers under ``boxes`` (the most values the depth
  walk can meet);
* ``nested_32``: lists 32 levels deep, repeated to 256 KiB (the deepest body accepted).

For each, the median milliseconds of ``json.loads`` and of ``files.parse_json`` followed by
``serve.body.json_depth`` (what the server runs), and the ratio; then the median
microseconds of ``serve.guard.check_headers`` for an allowed request with an ``Origin``.
Prints a JSON report.

    python scripts/bench_request_checks.py
    python scripts/bench_request_checks.py --repeats 50 --out report.json
"""

from __future__ import annotations

import argparse
import json

from sg2img.benchmark import median_time, write_json
from sg2img.files import parse_json
from sg2img.serve.body import json_depth
from sg2img.serve.guard import check_headers
from sg2img.serve.hosts import AllowedHosts

LIMIT = 256 * 1024


def bodies() -> dict[str, bytes]:
    graph = {"objects": ["sheep"] * 32,
             "relationships": [[i % 32, "left of", (i + 1) % 32] for i in range(256)]}
    largest = {"graph": graph, "boxes": [[0.1, 0.2, 0.3, 0.4]] * 32, "seed": 1,
               "num_samples": 4, "include": ["image", "layout", "graph"]}
    flat = b'{"boxes": [' + b",".join([b"1"] * ((LIMIT - 20) // 2)) + b"]}"
    unit = "[" * 30 + "]" * 30   # 32 levels with the object and the boxes list
    nested = ('{"boxes": [' + ",".join([unit] * ((LIMIT - 20) // (len(unit) + 1))) + "]}")
    return {"largest_graph": json.dumps(largest).encode(), "flat_256k": flat,
            "nested_32": nested.encode()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=21, help="timed calls per measurement")
    ap.add_argument("--out", default=None, help="also write the report to this JSON file")
    args = ap.parse_args()

    report: dict = {"bodies": {}}
    for name, body in bodies().items():
        assert len(body) <= LIMIT, (name, len(body))

        def strict(body=body):
            return json_depth(parse_json(body, "the request body", ValueError))

        plain = median_time(lambda body=body: json.loads(body), args.repeats)
        checked = median_time(strict, args.repeats)
        report["bodies"][name] = {"bytes": len(body), "depth": strict(),
                                  "json_loads_ms": round(plain * 1e3, 3),
                                  "parse_json_and_depth_ms": round(checked * 1e3, 3),
                                  "ratio": round(checked / plain, 2)}
    allowed = AllowedHosts.for_binding("0.0.0.0", 8000, ["sg2img.example.org"])
    headers = [(b"host", b"sg2img.example.org"), (b"origin", b"https://sg2img.example.org"),
               (b"content-type", b"application/json")]
    report["check_headers_us"] = round(
        median_time(lambda: check_headers(headers, allowed), args.repeats * 100) * 1e6, 2)
    print(json.dumps(report, indent=2))
    if args.out:
        write_json(args.out, report)


if __name__ == "__main__":
    main()
