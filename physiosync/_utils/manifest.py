"""The list of files physiosync wrote in a folder (``.physiosync-files``).

Each line is one JSON array ``[kind, path]``: the kind of writer (``"cv"``,
``"pretrain"``, ``"finetune"``, ``"report"``, ``"synth"``) and the file's path relative
to the folder. Lines are only ever appended (``O_APPEND``, one ``write`` each, flushed
to disk), by the writer that is about to put the file in place (see
:func:`~physiosync._utils.io.record_writes`), so the list is never short of a file
physiosync wrote; a line cut short by a crash is ignored. A file is physiosync's only if
it is listed here: no name pattern makes a file physiosync's.
"""

from __future__ import annotations

import json
from pathlib import Path

from .io import append_durably, atomic_write, record_writes

__all__ = ["MANIFEST", "read_manifest", "append_manifest", "rewrite_manifest", "recording",
           "few_names"]

#: Name of the list of files physiosync wrote in a folder.
MANIFEST = ".physiosync-files"


def few_names(names, limit: int = 5) -> str:
    """The first *limit* of *names*, comma-separated, then ``...`` if there are more (for
    a refusal that names the files it will not touch)."""
    names = list(names)
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def read_manifest(folder) -> dict | None:
    """``{relative path: kind}`` of the files listed in *folder*, or None without a list.

    Raises
    ------
    OSError
        If the list exists but cannot be read.
    """
    try:
        raw = (Path(folder) / MANIFEST).read_bytes()
    except FileNotFoundError:
        return None
    out = {}
    for line in raw.splitlines():
        try:
            kind, rel = json.loads(line)
        except (ValueError, TypeError):
            continue  # a line cut short by a crash, or damaged: lists nothing
        if isinstance(kind, str) and isinstance(rel, str):
            out[rel] = kind
    return out


def _lines(kind: str, rels) -> bytes:
    # ensure_ascii: any name, undecodable bytes included (surrogates), fits on one line
    return "".join(json.dumps([kind, rel]) + "\n" for rel in rels).encode("ascii")


def append_manifest(folder, kind: str, rels) -> None:
    """Append ``[kind, rel]`` lines for the relative paths *rels* and flush them to disk."""
    data = _lines(kind, rels)
    if data:
        append_durably(Path(folder) / MANIFEST, data)


def rewrite_manifest(folder, listed: dict) -> None:
    """Replace the list with *listed* (``{rel: kind}``) atomically (the lock holder only).

    The lines keep *listed*'s order (that of the list read back, then new names), so a
    resume that lists nothing new leaves the file byte-identical.
    """
    atomic_write(Path(folder) / MANIFEST,
                 b"".join(_lines(kind, [rel]) for rel, kind in listed.items()))


class _Recorder:
    def __init__(self, folder, kind: str):
        self.folder, self.kind = Path(folder), kind
        self.seen = {rel for rel, k in (read_manifest(folder) or {}).items() if k == kind}

    def __call__(self, rel: str) -> None:
        if rel in self.seen or rel == MANIFEST:
            return
        append_manifest(self.folder, self.kind, [rel])
        self.seen.add(rel)


def recording(folder, kind: str):
    """A context in which every atomic write below *folder* is listed under *kind*.

    Parameters
    ----------
    folder : str | Path
        An existing folder.
    kind : str
        The writer, e.g. ``"cv"`` or ``"synth"``.
    """
    return record_writes(folder, _Recorder(folder, kind))
