"""The editor server's HTTP layer against hostile clients: Host and Origin for every binding,
strict JSON bodies, bounded error bodies, no server paths, security headers everywhere.

Servers in tests bind 127.0.0.1 only, so other bindings (``0.0.0.0``, ``127.1``,
``::ffff:127.0.0.1``) are tested in-process: the app is built with the allow-list such a
server gets and driven by Starlette's test client with crafted ``Host`` and ``Origin``.
"""

import json
import logging

import pytest
import torch

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install "
                                        "'sg2img[serve]'")
pytest.importorskip("httpx2", reason="the test client needs httpx2 (the dev extra)")

from starlette.testclient import TestClient  # noqa: E402

from sg2img import cli, load_model  # noqa: E402
from sg2img.checkpoint import export_inference  # noqa: E402
from sg2img.config import Config  # noqa: E402
from sg2img.model import GALSGenerator  # noqa: E402
from sg2img.serve import (  # noqa: E402
    AllowedHosts,
    EditorServer,
    ModelRegistry,
    ServedModel,
    create_app,
    is_loopback,
)
from sg2img.serve.body import MAX_DEPTH, json_depth  # noqa: E402
from sg2img.serve.hosts import HostName, check_host_names  # noqa: E402
from sg2img.vocab import Vocab  # noqa: E402

SHEEP = {"objects": ["sky", "grass", "sheep"],
         "relationships": [[0, "above", 1], [2, "standing on", 1]]}
PORT = 8000
EVIL = "evil.example"
LONG = "x" * 250_000


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("alice-secret-folder")


@pytest.fixture(scope="module")
def registry(model_dir):
    vocab = Vocab.from_names(["sky", "grass", "sheep", "tree"],
                             ["above", "below", "standing on", "inside"])
    cfg = Config.from_preset("tiny")
    torch.manual_seed(0)
    gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds)
    path = export_inference(model_dir / "tiny.pt", cfg, vocab, gen)
    return ModelRegistry([ServedModel("tiny", "tiny.pt", load_model(path, "cpu"))])


def client_for(registry, bound: str, **kw) -> TestClient:
    """A test client of the app a server bound to ``bound``:PORT would run."""
    allowed = AllowedHosts.for_binding(bound, PORT, kw.pop("extra", ()))
    return TestClient(create_app(registry, allowed_hosts=allowed),
                      base_url=f"http://127.0.0.1:{PORT}", **kw)


def error_of(r, status):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error"} and "message" in body["error"] and "field" in body["error"]
    return body["error"]


def post(c, body, headers=None, path="/api/layout"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return c.post(path, content=data, headers={"Content-Type": "application/json",
                                               **(headers or {})})


# ------------------------------------------------------------------------ the resolver
@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "127.0.0.2", "localhost", "::1",
                                  "[::1]", "::ffff:127.0.0.1", "[::ffff:127.0.0.1]"])
def test_loopback_is_decided_by_resolving_the_address(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "0", "192.168.1.4", "::ffff:10.0.0.1",
                                  "no-such-host.invalid"])
def test_every_other_address_is_not_loopback(host):
    assert not is_loopback(host)


def test_host_names_compare_canonically():
    assert HostName.parse("LocalHost:8000") == HostName("localhost", 8000)
    assert HostName.parse("[::ffff:127.0.0.1]:1") == HostName.parse("[::ffff:7f00:1]:1")
    assert HostName.parse("::1") == HostName.parse("[::1]")
    for bad in ["localhost@evil.example", "a b", "x:0", "x:65536", "x:1:2:", "[::1", "[zz]",
                "", "*", "localhost:80:80"]:
        with pytest.raises(ValueError):
            HostName.parse(bad)
    with pytest.raises(ValueError, match="--allowed-host"):
        check_host_names(["ok.example", "not a host"])


def test_json_depth_counts_without_recursion():
    assert json_depth(1) == 0 and json_depth({}) == 1 and json_depth({"a": [[1]]}) == 3
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert json_depth(deep) == 100_001


# ------------------------------------------------------------------------ Host and Origin
BINDINGS = ["127.0.0.1", "127.1", "::ffff:127.0.0.1", "0.0.0.0", "localhost", "::"]


@pytest.mark.parametrize("bound", BINDINGS)
@pytest.mark.parametrize("host", [EVIL, f"{EVIL}:{PORT}", f"rebind.attacker.example:{PORT}",
                                  "localhost.", f"localhost:{PORT + 1}", "localhost@evil",
                                  "127.0.0.1:1", ""])
def test_a_foreign_host_is_refused_for_every_binding(registry, bound, host):
    c = client_for(registry, bound)
    err = error_of(c.get("/api/models", headers={"Host": host}), 400)
    assert "Host" in err["message"] and "--allowed-host" in err["message"]
    assert err["field"] is None and err["header"] == "Host"
    r = post(c, {"graph": SHEEP}, {"Host": host, "Origin": f"http://{host}"})
    assert error_of(r, 400)["header"] == "Host"


@pytest.mark.parametrize("bound", BINDINGS)
@pytest.mark.parametrize("origin", [f"http://{EVIL}", f"http://{EVIL}:{PORT}", "null",
                                    f"http://localhost:{PORT + 1}", "http://localhost:3000",
                                    f"ftp://127.0.0.1:{PORT}", f"http://127.0.0.1:{PORT}/x",
                                    "http://", "evil"])
def test_a_foreign_origin_is_refused_with_an_allowed_host(registry, bound, origin):
    c = client_for(registry, bound)
    err = error_of(post(c, {"graph": SHEEP}, {"Origin": origin}), 403)
    assert "Origin" in err["message"] and err["header"] == "Origin"
    assert error_of(c.get("/api/models", headers={"Origin": origin}), 403)


@pytest.mark.parametrize("bound", BINDINGS)
def test_the_page_own_origin_and_the_loopback_names_still_work(registry, bound):
    c = client_for(registry, bound)
    host = f"[{bound}]" if ":" in bound else bound
    for name in [host, "localhost", "127.0.0.1", "[::1]", "LOCALHOST"]:
        for h in (name, f"{name}:{PORT}"):
            assert c.get("/api/models", headers={"Host": h}).status_code == 200, h
            r = post(c, {"graph": SHEEP, "include": []}, {"Host": h, "Origin": f"http://{h}"})
            assert r.status_code == 200, (h, r.text)
    assert post(c, {"graph": SHEEP, "include": []}).status_code == 200  # no Origin: fine


def test_allowed_hosts_add_names_with_the_bound_port_or_their_own(registry):
    c = client_for(registry, "0.0.0.0", extra=["sg2img.example.org", "192.168.1.5:9000",
                                                "fe80::1"])
    for h in ["sg2img.example.org", f"sg2img.example.org:{PORT}", "192.168.1.5:9000",
              "[fe80::1]", f"[fe80::1]:{PORT}"]:
        assert c.get("/", headers={"Host": h}).status_code == 200, h
        r = post(c, {"graph": SHEEP, "include": []}, {"Host": h, "Origin": f"https://{h}"})
        assert r.status_code == 200, h
    for h in ["sg2img.example.org:1", "192.168.1.5", f"192.168.1.5:{PORT}", "example.org"]:
        assert error_of(c.get("/", headers={"Host": h}), 400)
    # A page behind a proxy on another port of an allowed name is the same site.
    assert post(c, {"graph": SHEEP, "include": []},
                {"Origin": "https://sg2img.example.org"}).status_code == 200


def test_a_request_needs_exactly_one_host_and_at_most_one_origin(registry):
    app = create_app(registry, allowed_hosts=AllowedHosts.for_binding("127.0.0.1", PORT))
    sent = []

    async def call(headers):
        scope = {"type": "http", "method": "GET", "path": "/api/models", "raw_path": b"",
                 "query_string": b"", "headers": headers, "scheme": "http",
                 "server": ("127.0.0.1", PORT), "client": ("127.0.0.1", 1),
                 "http_version": "1.1", "root_path": "", "asgi": {"version": "3.0"}}

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        await app(scope, receive, send)
        return sent[-2]["status"]

    import anyio

    assert anyio.run(call, []) == 400
    assert anyio.run(call, [(b"host", b"localhost"), (b"host", b"localhost")]) == 400
    assert anyio.run(call, [(b"host", b"localhost"), (b"origin", b"http://localhost"),
                            (b"origin", b"http://localhost")]) == 403
    assert anyio.run(call, [(b"host", b"localhost")]) == 200


def test_the_server_builds_its_allow_list_from_binding_and_flags(registry):
    srv = EditorServer(registry, "127.0.0.1", 0, allowed_hosts=["sg2img.example.org"])
    try:
        c = TestClient(srv.app, base_url="http://sg2img.example.org")
        assert c.get("/api/models").status_code == 200
        assert c.get("/api/models", headers={"Host": f"127.0.0.1:{srv.port}"}).status_code == 200
        assert error_of(c.get("/api/models", headers={"Host": EVIL}), 400)
        assert error_of(post(c, {"graph": SHEEP}, {"Origin": f"http://{EVIL}"}), 403)
    finally:
        srv.socket.close()
    with pytest.raises(ValueError, match="--allowed-host"):
        EditorServer(registry, "127.0.0.1", 0, allowed_hosts=["evil example"])


class _FakeServer:
    url = "http://fake/"

    def run(self):
        pass


@pytest.mark.parametrize("host, warned", [("127.1", False), ("::ffff:127.0.0.1", False),
                                          ("localhost", False), ("0.0.0.0", True)])
def test_cli_serve_passes_allowed_hosts_and_warns_only_off_loopback(monkeypatch, capsys, host,
                                                                    warned):
    import sg2img.serve

    seen = {}

    def fake_make_server(checkpoints, **kw):
        seen.update(kw)
        return _FakeServer()

    monkeypatch.setattr(sg2img.serve, "make_server", fake_make_server)
    assert cli.main(["serve", "--host", host, "--port", "0", "--allowed-host", "a.example",
                     "--allowed-host", "b.example:8443"]) == 0
    assert ("not loopback" in capsys.readouterr().err) == warned
    assert seen["allowed_hosts"] == ["a.example", "b.example:8443"]


def test_cli_serve_refuses_a_bad_allowed_host_in_one_line(monkeypatch, capsys):
    import sg2img.serve

    monkeypatch.setattr(sg2img.serve, "make_server", lambda *a, **k: pytest.fail("ran"))
    assert cli.main(["serve", "--allowed-host", "http://x.example/"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--allowed-host" in err[0] and "not a host name" in err[0]


# ------------------------------------------------------------------------ strict JSON
@pytest.fixture(scope="module")
def client(registry):
    with client_for(registry, "127.0.0.1", raise_server_exceptions=False) as c:
        yield c


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("body, words", [
    ('{"graph": ' + nested(100_000) + "}", "nested too deeply"),
    ('{"graph": ' + nested(5000) + "}", "nested too deeply"),
    ('{"graph": {"objects": ["sky"]}, "seed": ' + "9" * 5000 + "}", "number too long"),
    ('{"graph": {"objects": ["sky"]}, "graph": {"objects": ["grass"]}}', "duplicate key"),
    ('{"graph": {"objects": ["sky"], "objects": ["grass"]}}', "duplicate key"),
] + [('{"graph": {"objects": ["sky"]}, "' + key + '": ' + nested(depth) + "}", "levels deep")
     for key in ["seed", "include", "model", "num_samples", "resample_object"]
     for depth in (200, 970, 980)])
def test_bodies_the_command_line_refuses_get_a_400(client, caplog, body, words):
    with caplog.at_level(logging.ERROR):
        r = post(client, body, path="/api/generate")
    err = error_of(r, 400)
    assert words in err["message"] or "nested too deeply" in err["message"], err
    assert len(r.content) < 1000
    assert not caplog.records  # no traceback in the log


def test_shallow_bodies_still_parse(client):
    body = {"graph": {"objects": ["sky", "grass"], "relationships": [[0, "above", 1]]},
            "boxes": [[0, 0, 1, 0.5], None]}
    assert post(client, body).status_code == 200
    assert MAX_DEPTH >= 8


# ------------------------------------------------------------------------ bounded errors
@pytest.mark.parametrize("body, field", [
    ({"graph": SHEEP, "seed": LONG}, "seed"),
    ({"graph": SHEEP, "num_samples": LONG}, "num_samples"),
    ({"graph": SHEEP, "include": [LONG]}, "include"),
    ({"graph": SHEEP, "include": LONG}, "include"),
    ({"graph": SHEEP, "model": LONG}, "model"),
    ({"graph": SHEEP, "seed": 10**4000}, "seed"),
    ({"graph": SHEEP, "resample_object": [LONG]}, "resample_object"),
    ({"graph": SHEEP, "boxes": [[LONG, 0, 1, 1], None, None]}, None),
    ({"graph": SHEEP, **{f"k{i}": 0 for i in range(21_000)}}, "k0"),
    ({"graph": SHEEP, LONG: 0}, LONG[:80]),
    ({"graph": {"objects": [LONG]}}, "graph.objects[0]"),
])
def test_error_bodies_do_not_echo_large_inputs(client, body, field):
    r = post(client, body, path="/api/generate")
    err = error_of(r, 400)
    assert len(r.content) < 2000, len(r.content)
    if field is not None:
        assert err["field"] == field


def test_long_paths_and_headers_are_not_echoed(client):
    r = client.get("/" + "a" * 10_000)
    assert error_of(r, 404) and len(r.content) < 1000
    r = client.post("/api/generate", content=b"{}", headers={"Content-Type": "x/" + "y" * 8000})
    assert error_of(r, 415) and len(r.content) < 1000


def test_errors_name_a_model_by_its_label_not_its_path(client, model_dir):
    r = post(client, {"graph": SHEEP, "edits": [{"op": "resample", "index": 2}]},
             path="/api/manipulate")
    err = error_of(r, 400)
    assert "model.renderer.noise=spatial" in err["message"] and "tiny.pt" in err["message"]
    assert str(model_dir) not in r.text and "alice-secret-folder" not in r.text


# ------------------------------------------------------------------------ headers
@pytest.mark.parametrize("path", ["/", "/static/index.html", "/static/app.js",
                                  "/static/app.css", "/api/models"])
def test_every_response_carries_the_page_security_headers(client, path):
    r = client.get(path)
    assert r.status_code == 200, path
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_refusals_carry_the_security_headers_too(client):
    r = client.get("/", headers={"Host": EVIL})
    assert r.status_code == 400 and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
