"""The zip directory of an untrusted torch file, checked before ``torch.load`` reads it.

``torch.save`` writes a zip archive whose records are all STORED (never compressed): one
folder holding ``data.pkl`` (the pickled structure), one ``data/<n>`` record per tensor
storage and a few small metadata records. ``torch.load`` would inflate a DEFLATE record all
the same, so a 14 MB file can unpack to gigabytes before any check on the loaded tensors
runs. :func:`check_torch_archive` reads only the zip's central directory and refuses:

* compressed or encrypted records (torch never writes them), so that the bytes loaded are
  the bytes on disk;
* records that together hold more bytes than the file (overlapping records), or more than
  the weights limit (``$SG2IMG_MAX_WEIGHTS_MB``, counted uncompressed);
* records a ``torch.save`` file does not have (TorchScript code, files outside the one
  folder, unknown names), duplicate names, more than :data:`MAX_RECORDS` records, names over
  :data:`MAX_NAME_CHARS` characters.

Files in torch's legacy (pre-1.6, non-zip) format pass through: they store tensors raw, so
the bytes loaded are bounded by the file's size.

Once loaded, :func:`tensor_problem` says what is wrong with one untrusted tensor (sparse,
meta, complex or quantized, a view larger than its storage, NaN, infinite or absurdly large
values), so that a hostile value is refused where the file loads, not deep in a model.
"""

from __future__ import annotations

import functools
import math
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where it is used: files.py imports this module
    import torch

ZIP_MAGIC = b"PK\x03\x04"    # what torch.load looks for to read a file as a zip archive
MAX_RECORDS = 100_000        # one per tensor storage: a training checkpoint has a few thousand
MAX_NAME_CHARS = 512         # a file name (255 bytes) and the record inside its folder
MAX_METADATA_BYTES = 4096    # version, byteorder, alignment, serialization id: a few bytes each
# Records under the archive's folder besides data.pkl and data/<n>.
_METADATA = {"version", "byteorder", ".format_version", ".storage_alignment", ".data/version",
             ".data/serialization_id"}
_STORAGE = re.compile(r"data/[0-9]{1,20}")
# Largest magnitude a weight may have. Trained weights stay within a few hundred; 1e8 leaves
# room for any real model, while 3e38 (the float32 maximum) overflows the first layer.
MAX_ABS_WEIGHT = 1e8


def is_zip_torch_file(path: str | Path) -> bool:
    """Whether ``torch.load`` reads ``path`` as a zip archive (it checks the first 4 bytes)."""
    with open(path, "rb") as f:
        return f.read(4) == ZIP_MAGIC


def check_torch_archive(path: str | Path, what: str, error: type[Exception],
                        max_bytes: int, limit_env: str) -> int:
    """Raise ``error`` unless the zip archive at ``path`` is one ``torch.save`` could write.

    Only the central directory is read; no record is inflated.

    Args:
        path: a regular file that starts with the zip magic (:func:`is_zip_torch_file`).
        what: what the file is, for messages ("checkpoint", "VGG19 weights", ...).
        error: the exception class to raise.
        max_bytes: the most bytes the records may hold together, uncompressed.
        limit_env: the environment variable that sets ``max_bytes`` (named in the message).

    Returns:
        The bytes the records hold together (what ``torch.load`` will read).
    """
    path = Path(path)
    bad = f"{what} {path} is not a file torch.save wrote"
    try:
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as e:
        raise error(f"cannot read {what} {path}: the file is truncated, corrupt or not a torch "
                    f"file (its zip directory is unreadable: {str(e)[:80]})") from None
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror or e}") from None
    if not records:
        raise error(f"{bad}: its zip archive is empty")
    if len(records) > MAX_RECORDS:
        raise error(f"{bad}: {len(records):,} records, over the {MAX_RECORDS:,} a checkpoint "
                    f"can have (one per tensor)")
    total = sum(rec.file_size for rec in records)   # what torch.load would inflate
    if total > max_bytes:
        raise error(f"{what} {path} holds {total / 2**20:.1f} MB of records uncompressed, over "
                    f"the {max_bytes / 2**20:g} MB limit for a {what}; raise the limit with "
                    f"${limit_env}")
    size = path.stat().st_size
    folder = records[0].filename.split("/", 1)[0]
    seen: set[str] = set()
    for rec in records:
        name = rec.filename
        shown = name[:MAX_NAME_CHARS].encode("unicode_escape").decode()
        if len(name) > MAX_NAME_CHARS:
            raise error(f"{bad}: a record name is over {MAX_NAME_CHARS} characters ({shown}...)")
        if name in seen:
            raise error(f"{bad}: the record {shown} appears twice")
        seen.add(name)
        top, _, inner = name.partition("/")
        if top != folder or not inner:  # the folder is the saved file's name: any characters
            raise error(f"{bad}: the record {shown} is outside the archive's folder {folder!r}")
        if inner in ("code", "constants.pkl") or inner.startswith("code/"):
            raise error(f"{bad}: it is a TorchScript archive (torch.jit.save); sg2img reads "
                        f"only weights saved with torch.save")
        if not (inner == "data.pkl" or _STORAGE.fullmatch(inner) or inner in _METADATA):
            raise error(f"{bad}: unexpected record {shown}")
        if rec.compress_type != zipfile.ZIP_STORED or rec.compress_size != rec.file_size:
            raise error(f"{bad}: the record {shown} is compressed; torch.save never compresses, "
                        f"and a compressed record could unpack to far more than the file's "
                        f"size. Re-save it with torch.save")
        if rec.flag_bits & 0x1:
            raise error(f"{bad}: the record {shown} is encrypted")
        if inner in _METADATA and rec.file_size > MAX_METADATA_BYTES:
            raise error(f"{bad}: the record {shown} holds {rec.file_size:,} bytes, over the "
                        f"{MAX_METADATA_BYTES:,} of a metadata record")
        if rec.header_offset + rec.file_size > size:
            raise error(f"cannot read {what} {path}: the file is truncated, corrupt or not a "
                        f"torch file (the record {shown} ends past the end of the file)")
    if folder + "/data.pkl" not in seen:
        raise error(f"{bad}: it has no data.pkl record")
    if total > size:
        raise error(f"{bad}: its records hold {total:,} bytes, more than the file's {size:,} "
                    f"(records that overlap)")
    return total


def tensor_problem(value: Any, max_abs: float = MAX_ABS_WEIGHT) -> str | None:
    """What makes ``value`` unfit as a weight from an untrusted file, or None if nothing.

    A weight must be a dense tensor with values (not sparse, not on the meta device), real
    (floating point, integer or bool; not complex or quantized), no larger than its storage
    (a stride-0 view could claim billions of elements), and, when floating point, finite and
    within ``max_abs``. The values are scanned with ``amax``/``amin``: no copy is made.
    """
    import torch

    if not isinstance(value, torch.Tensor):
        return f"is a {type(value).__name__}, not a tensor"
    if value.layout != torch.strided:
        return f"is a sparse tensor ({str(value.layout).removeprefix('torch.')}); weights are dense"
    if value.is_meta:
        return "is a meta tensor (a shape without values)"
    if value.is_complex() or value.is_quantized or value.dtype not in _real_dtypes():
        return f"has dtype {str(value.dtype).removeprefix('torch.')}; weights are real numbers"
    needed = value.numel() * value.element_size()
    if needed > value.untyped_storage().nbytes():
        return "is a view larger than the data stored for it"
    if value.is_floating_point() and value.numel():
        hi, lo = float(value.amax()), float(value.amin())
        if not (math.isfinite(hi) and math.isfinite(lo)):
            return "holds NaN or infinite values"
        if max(abs(hi), abs(lo)) > max_abs:
            return (f"holds values as large as {max(abs(hi), abs(lo)):.3g}, over the {max_abs:g} "
                    f"a trained weight can have")
    return None


@functools.cache
def _real_dtypes() -> frozenset[torch.dtype]:
    import torch

    return frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.bool,
                      torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64})


def rewrite_archive(src: str | Path, dst: str | Path, *, compression: int = zipfile.ZIP_STORED,
                    extra: dict[str, bytes] | None = None) -> Path:
    """Copy the torch archive ``src`` to ``dst`` with every record recompressed.

    For tests and benchmarks: ``compression=zipfile.ZIP_DEFLATED`` over a checkpoint holding a
    large zero tensor is the compression bomb :func:`check_torch_archive` refuses. Records are
    streamed (16 MB at a time), so a bomb of gigabytes is built in bounded memory.

    Args:
        extra: records to add, named inside the archive's folder (``{"junk": b"..."}``).
    """
    import shutil

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression) as zout:
        records = zin.infolist()
        for rec in records:
            with zin.open(rec) as s, zout.open(rec.filename, "w", force_zip64=True) as d:
                shutil.copyfileobj(s, d, 16 << 20)
        folder = records[0].filename.split("/", 1)[0]
        for name, data in (extra or {}).items():
            zout.writestr(f"{folder}/{name}", data)
    return Path(dst)
