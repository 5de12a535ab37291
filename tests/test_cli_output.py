"""Output written all or nothing (``files.StagedOutput``) and the bounds of ``sg2img generate``.

Probe cases: U3 (a failed commit left 2 of 4 files), U4 (SIGTERM while writing left a staging
folder and printed nothing), U14 (a full disk did not name the file), U15 (``--out ''`` and a
dangling ``--out`` link), U16 (a too-large ``--sheet`` failed after generating), U17
(``--samples`` unbounded) and U18 (``train`` printed INFO lines before its error line).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from data_fixtures import write_tiny_coco
from PIL import Image

from sg2img.api import GenerationError, generate
from sg2img.cli import main
from sg2img.data.shapes import shapes_vocab
from sg2img.files import (
    TEMP_PREFIX,
    DiskFullError,
    OutputError,
    StagedOutput,
    StoppedBySignal,
    check_output_folder,
)
from sg2img.generate_args import DEFAULT_MAX_IMAGES, MAX_IMAGES_ENV, check_image_count
from sg2img.testing import random_model_export
from sg2img.vis import make_sheet, sheet_rows_that_fit

ROOT = Path(__file__).resolve().parents[1]
SHEEP = {"objects": ["sky", "grass", "sheep"],
         "relationships": [[0, "above", 1], [2, "inside", 1]]}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    return str(random_model_export(tmp_path_factory.mktemp("model") / "tiny.pt", shapes_vocab()))


def _graphs(path: Path, n: int = 1) -> str:
    path.write_text(json.dumps(SHEEP if n == 1 else [SHEEP] * n))
    return str(path)


def _listing(folder: Path) -> dict[str, bytes | None]:
    """Every entry of ``folder`` (hidden ones too): file bytes, or None for a folder."""
    return {p.name: (None if p.is_dir() else p.read_bytes()) for p in folder.iterdir()}


def _one_error_line(capsys, rc: int, *contains: str) -> str:
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("sg2img: error: ") and err.count("\n") == 1, err
    for c in contains:
        assert c in err, err
    return err


def _write_three(stage: StagedOutput) -> None:
    for name in ("a.txt", "b.txt", "c.txt"):
        stage.path(name).write_text(f"new {name}")


# ------------------------------------------------------------------------ StagedOutput
def test_staged_output_replaces_names_only_at_the_end(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("old a")
    (out / "keep.txt").write_text("keep")
    with StagedOutput(out) as stage:
        _write_three(stage)
        assert (out / "a.txt").read_text() == "old a"    # not yet
        assert not (out / "b.txt").exists()
    assert _listing(out) == {"a.txt": b"new a.txt", "b.txt": b"new b.txt",
                             "c.txt": b"new c.txt", "keep.txt": b"keep"}
    assert stage.paths == [out / "a.txt", out / "b.txt", out / "c.txt"]


def test_staged_output_error_in_block_leaves_the_folder_as_it_was(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("old a")
    with pytest.raises(RuntimeError), StagedOutput(out) as stage:
        _write_three(stage)
        raise RuntimeError("boom")
    assert _listing(out) == {"a.txt": b"old a"}
    new = tmp_path / "new" / "deeper"
    with pytest.raises(RuntimeError), StagedOutput(new) as stage:
        _write_three(stage)
        raise RuntimeError("boom")
    assert not new.exists()


def test_staged_output_commit_failing_half_way_restores_every_name(tmp_path, monkeypatch):
    """U3's deeper case: the third move fails after two files are in place."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("old a")
    (out / "c.txt").write_text("old c")
    os.symlink(tmp_path / "victim", out / "b.txt")        # a link name is replaced, not followed
    (tmp_path / "victim").write_text("victim")
    real, failed = os.replace, []

    def replace(src, dst):              # the move of the new c.txt into place fails, once
        if Path(dst) == out / "c.txt" and TEMP_PREFIX not in Path(src).name and not failed:
            failed.append(src)
            raise PermissionError(errno.EACCES, "Permission denied", str(dst))
        return real(src, dst)

    before = _listing(out)
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(PermissionError), StagedOutput(out) as stage:
        _write_three(stage)
    monkeypatch.undo()
    assert failed and _listing(out) == before
    assert os.readlink(out / "b.txt") == str(tmp_path / "victim")
    assert (tmp_path / "victim").read_text() == "victim"


def test_staged_output_that_cannot_restore_keeps_the_old_files_and_says_where(tmp_path,
                                                                              monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("old a")
    (out / "c.txt").write_text("old c")
    real = os.replace

    def replace(src, dst):              # every move into c.txt fails, the restore too
        if Path(dst) == out / "c.txt":
            raise PermissionError(errno.EACCES, "Permission denied", str(dst))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OutputError, match=r"putting back c\.txt failed too; the previous "
                                          r"versions are in (\S+)") as info, \
            StagedOutput(out) as stage:
        _write_three(stage)
    monkeypatch.undo()
    kept = Path(str(info.value).rsplit(" ", 1)[1])
    assert (kept / "c.txt").read_text() == "old c"
    assert (out / "a.txt").read_text() == "old a"


def test_staged_output_refuses_a_folder_in_the_way_before_moving_anything(tmp_path):
    out = tmp_path / "out"
    (out / "c.txt").mkdir(parents=True)
    (out / "a.txt").write_text("old a")
    with pytest.raises(OutputError, match=r"c\.txt: a folder of that name is in the way"), \
            StagedOutput(out) as stage:
        _write_three(stage)
    assert _listing(out) == {"a.txt": b"old a", "c.txt": None}


def test_sigterm_while_writing_removes_the_staging_folder(tmp_path):
    out = tmp_path / "out"
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(StoppedBySignal) as info, StagedOutput(out) as stage:
        stage.path("a.txt").write_text("a")
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):        # the handler runs between bytecodes of this thread
            stage.path(f"x{_}.txt")
    assert info.value.signum == signal.SIGTERM and not info.value.written
    assert not out.exists()
    assert signal.getsignal(signal.SIGTERM) == before


def test_signal_during_the_moves_waits_until_they_are_done(tmp_path, monkeypatch):
    out = tmp_path / "out"
    real, sent = os.replace, []

    def replace(src, dst):
        if not sent:
            sent.append(1)
            os.kill(os.getpid(), signal.SIGTERM)
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(StoppedBySignal) as info, StagedOutput(out) as stage:
        _write_three(stage)
    assert info.value.written
    assert sorted(_listing(out)) == ["a.txt", "b.txt", "c.txt"]


def test_staged_output_outside_the_main_thread_installs_no_handler(tmp_path):
    done = []

    def run():
        with StagedOutput(tmp_path / "out") as stage:
            _write_three(stage)
        done.append(1)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert done and sorted(_listing(tmp_path / "out")) == ["a.txt", "b.txt", "c.txt"]


def test_a_full_disk_names_the_file(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(DiskFullError) as info, StagedOutput(out) as stage:
        stage.path("a.png")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert str(out / "a.png") in str(info.value) and "nothing was written" in str(info.value)
    assert not out.exists()


def test_staged_output_refuses_bad_names(tmp_path):
    with StagedOutput(tmp_path / "out") as stage:
        for bad in ("../x.png", "a/b.png", "", ".."):
            with pytest.raises(OutputError):
                stage.path(bad)
        stage.path("a.png").write_text("a")
        with pytest.raises(OutputError, match="twice"):
            stage.path("a.png")


def test_check_output_folder(tmp_path):
    with pytest.raises(OutputError, match="empty name"):
        check_output_folder("")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    with pytest.raises(OutputError, match="symbolic link to .*nowhere, which does not exist"):
        check_output_folder(tmp_path / "dangling")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        check_output_folder(tmp_path / "file")
    assert check_output_folder(tmp_path / "new") == tmp_path / "new"


# ------------------------------------------------------------------------ the CLI
def test_cli_folder_in_the_way_of_the_third_file_writes_nothing(ckpt, tmp_path, capsys):
    """U3: before, two of the four files were moved into place and the command exited 2."""
    out = tmp_path / "out"
    (out / "cyc_000_s2.png").mkdir(parents=True)
    (out / "cyc_000_s0.png").write_bytes(b"old")
    before = _listing(out)
    rc = main(["generate", _graphs(tmp_path / "cyc.json"), "--checkpoint", ckpt, "--out",
               str(out), "--samples", "3", "--save-layout"])
    _one_error_line(capsys, rc, "cyc_000_s2.png", "in the way")
    assert _listing(out) == before


def test_cli_commit_failing_half_way_restores_the_old_files(ckpt, tmp_path, capsys,
                                                            monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    for s in range(3):
        (out / f"cyc_000_s{s}.png").write_bytes(b"old %d" % s)
    before = _listing(out)
    real = os.replace

    def replace(src, dst):
        if Path(dst).name == "cyc_000_s2.png" and TEMP_PREFIX not in Path(src).name:
            raise PermissionError(errno.EACCES, "Permission denied", str(dst))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    rc = main(["generate", _graphs(tmp_path / "cyc.json"), "--checkpoint", ckpt, "--out",
               str(out), "--samples", "3", "--save-layout"])
    _one_error_line(capsys, rc, "Permission denied")
    assert _listing(out) == before


CHILD = r"""
import sys, time
from sg2img import files
from sg2img.cli import main

real_path, calls = files.StagedOutput.path, []

def path(self, name):
    calls.append(name)
    if len(calls) == 4:               # three files are in the staging folder: stop here
        print("staged", flush=True)
        time.sleep(120)
    return real_path(self, name)

files.StagedOutput.path = path
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_signal_while_writing_leaves_the_folder_as_it_was(ckpt, tmp_path, sig):
    """U4: before, SIGTERM left a hidden staging folder of PNGs and printed nothing."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "cyc_000_s0.png").write_bytes(b"old")
    before = _listing(out)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, "generate", _graphs(tmp_path / "cyc.json", 2),
         "--checkpoint", ckpt, "--out", str(out), "--samples", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert proc.stdout.readline() == "staged\n"
        assert any(p.name.startswith(TEMP_PREFIX) for p in out.iterdir())
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + sig, stderr
    assert stderr == f"sg2img: stopped by signal {int(sig)}; nothing written to {out}\n"
    assert _listing(out) == before


def test_cli_out_empty_is_an_error(ckpt, tmp_path, capsys, monkeypatch):
    """U15: ``--out ''`` wrote into the current folder."""
    monkeypatch.chdir(tmp_path)
    graphs = _graphs(tmp_path / "cyc.json")
    rc = main(["generate", graphs, "--checkpoint", ckpt, "--out", ""])
    _one_error_line(capsys, rc, "empty name")
    assert [p.name for p in tmp_path.iterdir()] == ["cyc.json"]


def test_cli_dangling_out_link_says_so(ckpt, tmp_path, capsys):
    """U15: a dangling ``--out`` link gave "[Errno 17] File exists"."""
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    rc = main(["generate", _graphs(tmp_path / "cyc.json"), "--checkpoint", ckpt, "--out",
               str(tmp_path / "dangling")])
    err = _one_error_line(capsys, rc, "symbolic link", "does not exist")
    assert "File exists" not in err


def test_cli_disk_full_names_the_file(ckpt, tmp_path, capsys, monkeypatch):
    """U14: the line was "disk full while writing a file"."""
    def full(self, fp, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)
    out = tmp_path / "out"
    rc = main(["generate", _graphs(tmp_path / "cyc.json"), "--checkpoint", ckpt, "--out",
               str(out)])
    _one_error_line(capsys, rc, "disk full", str(out / "cyc_000_s0.png"))
    assert not out.exists()


@pytest.fixture
def no_generation(monkeypatch):
    """Bounds are checked before the model loads: loading or generating fails the test."""
    import sg2img.api

    def fail(*a, **k):
        raise AssertionError("the model was loaded or run")

    monkeypatch.setattr(sg2img.api, "load_model", fail)
    monkeypatch.setattr(sg2img.api, "generate", fail)


def test_cli_samples_are_bounded_before_loading(tmp_path, capsys, no_generation):
    """U17: ``--samples 100000`` ran past two minutes holding every image."""
    rc = main(["generate", _graphs(tmp_path / "cyc.json"), "--samples", "100000", "--out",
               str(tmp_path / "out")])
    _one_error_line(capsys, rc, "100000 images", f"{DEFAULT_MAX_IMAGES}", "--samples",
                    MAX_IMAGES_ENV)
    assert not (tmp_path / "out").exists()


def test_cli_graphs_per_file_are_bounded(tmp_path, capsys, no_generation, monkeypatch):
    monkeypatch.setenv(MAX_IMAGES_ENV, "10")
    rc = main(["generate", _graphs(tmp_path / "a.json", 6), _graphs(tmp_path / "b.json", 5),
               "--out", str(tmp_path / "out")])
    _one_error_line(capsys, rc, "11 graphs x 1 sample make 11 images", "10", MAX_IMAGES_ENV)
    monkeypatch.setenv(MAX_IMAGES_ENV, "ten")
    rc = main(["generate", _graphs(tmp_path / "a.json"), "--out", str(tmp_path / "out")])
    _one_error_line(capsys, rc, MAX_IMAGES_ENV, "whole number")


def test_api_image_count_is_bounded(monkeypatch):
    monkeypatch.setenv(MAX_IMAGES_ENV, "6")
    with pytest.raises(GenerationError, match=r"2 graphs x 4 samples make 8 images.*"
                                              rf"num_samples.*\${MAX_IMAGES_ENV}"):
        generate([SHEEP, SHEEP], "nonexistent.pt", num_samples=4)   # before the model loads
    check_image_count(2, 3)
    monkeypatch.setenv(MAX_IMAGES_ENV, "0")
    with pytest.raises(GenerationError, match="positive"):
        check_image_count(1, 1)


def test_cli_sheet_too_large_is_refused_before_generating(tmp_path, capsys, no_generation):
    """U16: a 1,000-graph ``--sheet`` failed after 89 s of generation."""
    rc = main(["generate", _graphs(tmp_path / "m1000.json", 1000), "--sheet", "--out",
               str(tmp_path / "out")])
    _one_error_line(capsys, rc, "--sheet", "1000 graphs", "split the file")


@pytest.mark.parametrize("titles,row_titles", [(False, False), (True, True), (True, False)])
def test_sheet_rows_that_fit_is_make_sheets_limit(titles, row_titles):
    im = Image.new("RGB", (20, 10))
    kw = {"cell_height": 10, "pad": 2, "max_pixels": 20_000}
    fit = sheet_rows_that_fit([20, 20], titles=titles, row_titles=row_titles, **kw)
    assert fit > 1

    def sheet(n):
        return make_sheet([[im, im]] * n, ["a", "b"] if titles else None,
                          row_titles=[str(i) for i in range(n)] if row_titles else None, **kw)

    sheet(fit)
    with pytest.raises(ValueError, match=f"about {fit} such rows fit"):
        sheet(fit + 1)


def test_train_bad_input_error_is_the_only_line(tmp_path):
    """U18: the error line came after four INFO lines."""
    root = tmp_path / "data"
    write_tiny_coco(root, ("instances_train.json", "stuff_train.json"), "images/train")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "sg2img", "train", "--preset", "tiny", "--data", str(root),
         "--out", str(out), "--device", "cpu", "--set", "train.batch_size=1000000"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("sg2img: error: ") and proc.stderr.count("\n") == 1, \
        proc.stderr
    assert "batch_size" in proc.stderr and not out.exists()
