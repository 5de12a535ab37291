"""Reading untrusted files and writing files atomically: the one place sg2img touches disk.

Every file sg2img reads may come from a stranger. The rules, kept here once:

* Only regular files are read. A FIFO, a device such as ``/dev/zero`` or a directory is
  refused before it is opened, so nothing hangs or grows without bound.
* Sizes are bounded before reading: JSON files (scene graphs, edits, box files, vocabularies,
  dataset annotations) by :func:`max_json_bytes`, torch files by :func:`max_torch_bytes`,
  counted uncompressed from the zip directory before ``torch.load`` inflates anything.
  Both are documented in the README and overridable with the environment variables
  ``SG2IMG_MAX_JSON_MB`` and ``SG2IMG_MAX_WEIGHTS_MB``.
* JSON duplicate keys are an error (the last one silently winning hides mistakes), and JSON
  nested too deeply, or holding an integer too long to convert, gives a clear error rather
  than a ``RecursionError`` or a bare ``ValueError``.
* Torch files load with ``torch.load(weights_only=True)`` here, by sg2img, and only the
  resulting tensors are handed to third-party networks (:func:`load_state_dict_file`); no
  library ever unpickles a user's file.
* Files are written atomically (:func:`atomic_write`): a temp file in the same folder, fsync,
  ``os.replace``; a full disk becomes a one-line :class:`DiskFullError` and leaves any previous
  file intact. :func:`remove_stale_temp_files` cleans what a killed writer left.
* A set of files goes into a folder all or nothing (:class:`StagedOutput`): staged in a hidden
  folder, moved into place together, restored if a move fails, removed on SIGTERM/SIGINT.

Errors are raised as the caller's error class (a ``ValueError`` subclass such as
``SceneGraphError``), so that every module keeps its documented exceptions.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pickle
import stat
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where it is used: config and vocab use this module
    import torch

JSON_LIMIT_ENV = "SG2IMG_MAX_JSON_MB"
WEIGHTS_LIMIT_ENV = "SG2IMG_MAX_WEIGHTS_MB"
ANNOTATIONS_LIMIT_ENV = "SG2IMG_MAX_ANNOTATIONS_MB"
DEFAULT_MAX_JSON_MB = 64.0
DEFAULT_MAX_WEIGHTS_MB = 4096.0
DEFAULT_MAX_ANNOTATIONS_MB = 2048.0   # COCO-Stuff's stuff_train2017.json is about 1.2 GB
MAX_ECHO = 80          # characters of a user's value echoed back in an error message
TEMP_SUFFIX = ".tmp"
TEMP_PREFIX = ".sg2img-"


class DiskFullError(OSError):
    """The disk filled up while writing a file; the previous version of it is intact."""

    def __str__(self) -> str:  # the message alone, without OSError's "[Errno 28]" prefix
        return str(self.strerror)


def short(value: Any, limit: int = MAX_ECHO) -> str:
    """``repr(value)`` cut to ``limit`` characters, for echoing user input in messages."""
    try:
        text = repr(value) if not isinstance(value, str) else repr(value[: limit + 1])
    except (ValueError, RecursionError):  # an int too long for repr, a nested list too deep
        text = f"<{type(value).__name__} too long to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _limit_mb(env: str, default: float) -> float:
    raw = os.environ.get(env)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"${env} must be a number of megabytes, got {short(raw)}") from None
    if not value > 0:
        raise ValueError(f"${env} must be positive, got {short(raw)}")
    return value


def max_json_bytes() -> int:
    """Largest JSON file sg2img reads: ``$SG2IMG_MAX_JSON_MB`` megabytes (default 64)."""
    return int(_limit_mb(JSON_LIMIT_ENV, DEFAULT_MAX_JSON_MB) * 2**20)


def max_torch_bytes() -> int:
    """Largest weights/checkpoint file sg2img reads: ``$SG2IMG_MAX_WEIGHTS_MB`` (default 4096)."""
    return int(_limit_mb(WEIGHTS_LIMIT_ENV, DEFAULT_MAX_WEIGHTS_MB) * 2**20)


def max_annotation_bytes() -> int:
    """Largest dataset annotation JSON read: ``$SG2IMG_MAX_ANNOTATIONS_MB`` (default 2048)."""
    return int(_limit_mb(ANNOTATIONS_LIMIT_ENV, DEFAULT_MAX_ANNOTATIONS_MB) * 2**20)


def check_regular_file(path: str | os.PathLike, what: str, error: type[Exception],
                       max_bytes: int | None = None, limit_env: str | None = None) -> Path:
    """Raise ``error`` unless ``path`` is an existing regular file no larger than ``max_bytes``.

    Checked with ``stat`` before any ``open``, so a FIFO or a device is never opened.
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{path} is a directory, not a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path} is not a regular file (a pipe, socket or device); give a {what}")
    if max_bytes is not None and st.st_size > max_bytes:
        hint = f"; raise the limit with ${limit_env}" if limit_env else ""
        raise error(f"{path} is {st.st_size / 2**20:.1f} MB, over the {max_bytes / 2**20:g} MB "
                    f"limit for a {what}{hint}")
    return path


def _no_duplicate_keys(where: str, error: type[Exception]) -> Callable[[list], dict]:
    def hook(pairs: list[tuple[str, Any]]) -> dict:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise error(f"{where}: duplicate key {short(key)} in one JSON object")
            out[key] = value
        return out
    return hook


def parse_json(text: str | bytes, where: str, error: type[Exception]) -> Any:
    """``json.loads`` with sg2img's rules: duplicate keys, depth and huge integers are errors."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys(where, error))
    except RecursionError:
        raise error(f"{where} is nested too deeply (JSON arrays or objects inside each other "
                    f"thousands of times)") from None
    except UnicodeDecodeError as e:
        raise error(f"{where} is not UTF-8 text: {e.reason} at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise error(f"{where} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
                    ) from None
    except ValueError as e:
        if isinstance(e, error):
            raise
        # Python refuses integers of more than 4300 digits (int_max_str_digits).
        raise error(f"{where} holds a number too long to read ({str(e).split(';')[0]})") from None


def read_json(path: str | os.PathLike, what: str, error: type[Exception],
              max_bytes: int | None = None, limit_env: str | None = None) -> Any:
    """Read a JSON file under sg2img's rules (regular file, size bound, no duplicate keys).

    Args:
        path: the file.
        what: what the file is, for messages ("scene graph file", "edits file", ...).
        error: the exception class to raise (a ``ValueError`` subclass).
        max_bytes: size limit; :func:`max_json_bytes` when None.
        limit_env: the environment variable that sets ``max_bytes`` (named in the message).
    """
    limit = max_json_bytes() if max_bytes is None else max_bytes
    env = JSON_LIMIT_ENV if max_bytes is None else limit_env
    path = check_regular_file(path, what, error, limit, env)
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror or e}") from None
    if len(data) > limit:  # grew after the stat
        raise error(f"{path} is over the {limit / 2**20:g} MB limit for a {what}")
    return parse_json(data, str(path), error)


def load_torch_file(path: str | os.PathLike, what: str, error: type[Exception],
                    map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` of an untrusted file, with clean errors.

    A zip archive (torch's format) passes :func:`sg2img.torch_archive.check_torch_archive`
    first: only STORED records, the records a ``torch.save`` file has, their uncompressed
    sizes summed against :func:`max_torch_bytes`, so a compression bomb is refused unread.

    Raises:
        error: the file is missing, not a regular file, over :func:`max_torch_bytes` (on disk
            or uncompressed), a zip archive torch.save would not write (compressed records,
            unexpected records), or is truncated, corrupt or holds more than tensors and plain
            containers (a pickle that would run code is refused here, never executed).
    """
    import torch

    from .torch_archive import check_torch_archive, is_zip_torch_file

    limit = max_torch_bytes()
    path = check_regular_file(path, what, error, limit, WEIGHTS_LIMIT_ENV)
    if path.stat().st_size == 0:
        raise error(f"{what} {path} is empty (0 bytes)")
    try:
        zipped = is_zip_torch_file(path)
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror or e}") from None
    if zipped:  # the zip directory first: nothing is inflated, sizes count uncompressed
        check_torch_archive(path, what, error, limit, WEIGHTS_LIMIT_ENV)
    try:
        with warnings.catch_warnings():  # the error, if any, is the one line users get
            warnings.filterwarnings("ignore", message="Validating sparse tensor invariants")
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for damaged files: all mean "bad file"
        if isinstance(e, (MemoryError, KeyboardInterrupt)):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, KeyError):
            first = "neither a zip nor a pickle file"
        elif isinstance(e, pickle.UnpicklingError) and "weights_only" in str(e):
            first = "it holds Python objects that loading would have to execute"
        elif isinstance(e, (zipfile.BadZipFile, EOFError)):
            first = "truncated or not a torch file"
        first = first.replace("\x1b[1m", "").replace("\x1b[0m", "")
        raise error(f"cannot read {what} {path}: the file is truncated, corrupt, not a torch "
                    f"file, or holds more than plain tensors and containers ({first[:160]})"
                    ) from None


def load_state_dict_file(path: str | os.PathLike, what: str, error: type[Exception],
                         nested_key: str | None = None) -> dict[str, torch.Tensor]:
    """A state dict (``str -> Tensor``) from an untrusted file, loaded ``weights_only=True``.

    For third-party networks: sg2img loads the tensors, checks them, and hands the dict to the
    network's ``load_state_dict``, so the network's own loader never sees the file.

    Args:
        nested_key: accept ``{nested_key: state_dict}`` too (e.g. ``"state_dict"``).

    Raises:
        error: not a mapping of names to dense, real, finite tensors (:func:`check_state_dict`).
    """
    state = load_torch_file(path, what, error)
    if nested_key and isinstance(state, Mapping) and isinstance(state.get(nested_key), Mapping):
        state = state[nested_key]
    return check_state_dict(state, f"{what} {path}", error)


def check_state_dict(state: Any, what: str, error: type[Exception]) -> dict[str, torch.Tensor]:
    """``state`` as a dict if it maps names to tensors fit to load, else raise ``error``.

    Each tensor passes :func:`sg2img.torch_archive.tensor_problem`: dense, real, finite,
    not absurdly large. ``what`` starts the message ("VGG19 weights x.pth").
    """
    from .torch_archive import tensor_problem

    if not isinstance(state, Mapping) or not state:
        raise error(f"{what} is not a state dict (a mapping of names to tensors)")
    out = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise error(f"{what} is not a state dict: entry {short(key)} is not named by a "
                        f"string")
        problem = tensor_problem(value)
        if problem is not None:
            raise error(f"{what}: entry {short(key)} {problem}")
        out[key] = value
    return out


def load_into(module: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str,
              error: type[Exception]) -> None:
    """``module.load_state_dict(state)`` (strict) with a one-line error on mismatch.

    ``what`` starts the message: "x.pth is not a VGG19 state dict" gives
    "x.pth is not a VGG19 state dict (missing keys ...)".
    """
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())
        raise error(f"{what} ({detail[:200]})") from None


def _is_disk_full(e: BaseException) -> bool:
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    # torch's zip writer reports a full disk as a RuntimeError from inline_container.cc
    text = str(e)
    return isinstance(e, RuntimeError) and ("No space left" in text or "file write failed" in text
                                            or "unexpected pos" in text)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, what: str = "file") -> Iterator[IO[bytes]]:
    """Write ``path`` atomically: yield a temp file beside it, then fsync and ``os.replace``.

    A crash mid-write leaves any previous file intact and a ``.sg2img-*.tmp`` file that
    :func:`remove_stale_temp_files` removes later. New files are made readable (0644).

    Raises:
        DiskFullError: the disk filled up (one line naming the file).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.", suffix=TEMP_SUFFIX,
                               dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if _is_disk_full(e):
            raise DiskFullError(errno.ENOSPC, f"disk full while writing {what} {path}; the "
                                f"previous file, if any, is intact") from None
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where possible
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def atomic_torch_save(obj: Any, path: str | os.PathLike, what: str = "checkpoint") -> Path:
    """``torch.save(obj)`` to ``path`` through :func:`atomic_write`."""
    import torch

    with atomic_write(path, what) as f:
        torch.save(obj, f)
    return Path(path)


def remove_stale_temp_files(folder: str | os.PathLike, min_age_s: float = 60.0,
                            pattern: str = f"{TEMP_PREFIX}*") -> list[Path]:
    """Remove temp files and staging folders a killed writer left in ``folder``.

    Only names sg2img makes (``.sg2img-*``, and the older ``.ckpt_*.tmp``), and only those
    untouched for ``min_age_s`` seconds, so that a writer running right now is left alone.
    Returns what was removed.
    """
    import shutil

    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    now = time.time()
    for p in list(folder.glob(pattern)) + list(folder.glob(".ckpt_*.tmp")):
        try:
            if now - p.lstat().st_mtime < min_age_s:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
        except OSError:
            continue
    return removed


# --------------------------------------------------------------------------- staged output
class OutputError(ValueError):
    """An output folder that cannot be written as asked (empty name, dangling link, a folder
    in the way of a file)."""


class StoppedBySignal(BaseException):
    """SIGTERM or SIGINT arrived while :class:`StagedOutput` was open.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that no ``except Exception`` swallows it.
    ``written`` is False when nothing was written (the usual case) and True when the signal
    came during the final moves, which were finished first.
    """

    def __init__(self, signum: int, written: bool = False) -> None:
        super().__init__(signum)
        self.signum, self.written = signum, written


def check_output_folder(out: str | os.PathLike) -> Path:
    """``out`` as a folder files may be written into (existing or to be created).

    Raises:
        OutputError: an empty name, a symbolic link to nothing, or an existing non-folder.
    """
    if not os.fspath(out):
        raise OutputError("the output folder is an empty name; give a folder (. for the "
                          "current one)")
    path = Path(out)
    if path.is_symlink() and not path.exists():
        raise OutputError(f"output folder {path} is a symbolic link to "
                          f"{os.readlink(path)}, which does not exist; create that folder "
                          f"or give another")
    if path.exists() and not path.is_dir():
        raise OutputError(f"output folder {path} exists and is not a folder")
    return path


class StagedOutput:
    """Write a set of files into ``out`` all or nothing.

    ``path(name)`` hands out where to write ``name`` now: inside a hidden ``.sg2img-*``
    staging folder in ``out``. When the block ends without an error, every file is moved into
    place; names that already exist in ``out`` are replaced only then, and if a move fails
    half-way the files already moved are taken back and the previous ones restored. On any
    error, and on SIGTERM or SIGINT (raised as :class:`StoppedBySignal`, when opened in the
    main thread), the staging folder is removed, and ``out`` too when this block created it:
    ``out`` holds what it held before. A signal during the final moves waits until they are
    done. A full disk raises :class:`DiskFullError` naming the file. SIGKILL can leave the
    staging folder; :func:`remove_stale_temp_files` removes it on a later run.

    Attributes:
        out: the output folder.
        paths: the final paths of the files handed out, in order.
    """

    def __init__(self, out: str | os.PathLike, *, catch_signals: bool = True) -> None:
        self.out = check_output_folder(out)
        self.paths: list[Path] = []
        self._catch = catch_signals
        self._old_handlers: dict[int, Any] = {}
        self._defer = False
        self._pending: int | None = None
        self._keep_staging = False

    def __enter__(self) -> StagedOutput:
        self.out = check_output_folder(self.out)
        self.created = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(self.out)   # a killed run's staging folder, not ones in use
        self.tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=self.out))
        if self._catch:
            import signal

            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    self._old_handlers[sig] = signal.signal(sig, self._on_signal)
                except ValueError:  # not the main thread: Python cannot install handlers
                    break
        return self

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._defer:
            self._pending = signum
        else:
            raise StoppedBySignal(signum)

    def path(self, name: str) -> Path:
        """Where to write ``name`` now (inside the staging folder)."""
        final = self.out / name
        if Path(name).name != name or name in ("", ".", ".."):
            raise OutputError(f"{name!r} is not a plain file name")
        if final in self.paths:
            raise OutputError(f"{final} would be written twice")
        self.paths.append(final)
        return self.tmp / name

    def _commit(self) -> None:
        for final in self.paths:
            if final.is_dir() and not final.is_symlink():
                raise OutputError(f"cannot write {final}: a folder of that name is in the "
                                  f"way; move it or choose another output folder")
        backup = self.tmp / f"{TEMP_PREFIX}replaced"
        backup.mkdir()
        moved: list[tuple[Path, bool, bool]] = []   # (final, had an old file, new one placed)
        try:
            for final in self.paths:
                had_old = os.path.lexists(final)
                if had_old:
                    os.replace(final, backup / final.name)
                moved.append((final, had_old, False))
                os.replace(self.tmp / final.name, final)
                moved[-1] = (final, had_old, True)
        except BaseException as e:
            lost = []
            for final, had_old, placed in reversed(moved):
                try:
                    if had_old:
                        os.replace(backup / final.name, final)
                    elif placed:
                        os.unlink(final)
                except OSError:
                    lost.append(final.name)
            if lost:        # keep the previous files where they are, and say where
                self._keep_staging = True
                raise OutputError(f"moving the files into {self.out} failed ({e}), and "
                                  f"putting back {', '.join(lost)} failed too; the previous "
                                  f"versions are in {backup}") from e
            raise

    def __exit__(self, exc_type, exc, tb) -> None:
        import shutil

        self._defer = True      # a signal from here on waits until the folder is consistent
        failed = exc_type is not None
        try:
            if not failed:
                self._commit()
        except BaseException:
            failed = True
            raise
        finally:
            if not self._keep_staging:
                shutil.rmtree(self.tmp, ignore_errors=True)
            if failed and self.created and not self._keep_staging:
                shutil.rmtree(self.out, ignore_errors=True)
            import signal

            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)
            self._old_handlers.clear()
            if failed and _is_disk_full(exc if exc is not None else Exception()):
                last = self.paths[-1] if self.paths else self.out
                raise DiskFullError(errno.ENOSPC, f"disk full while writing {last}; nothing "
                                    f"was written to {self.out}") from None
        if self._pending is not None:
            raise StoppedBySignal(self._pending, written=True)
