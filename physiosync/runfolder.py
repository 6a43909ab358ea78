"""Run folders that protect what they hold: a fingerprint marker and a lock.

Every command that writes results into an ``--out`` folder (``cv``, ``pretrain``,
``finetune``, ``report``) goes through :class:`RunFolder`::

    with RunFolder(out, "cv", run_fingerprint(cfg), description="...") as folder:
        ...                    # checks that need the data (no writing yet)
        folder.claim()         # records the run; from here on files are written
        ...

Entering takes the folder's lock and decides, before any compute, whether the run may
use the folder:

* an empty or missing folder is a **new** run;
* a folder whose marker (``.physiosync-run.json``) records this kind of run with the
  same fingerprint is the **same run**, which resumes;
* anything else stops with :class:`~physiosync.exceptions.RunFolderError`: a
  different run of the same kind, a run of another kind whose files would collide, or
  files that no recorded run wrote (for example the user's own ``results.csv``).

What physiosync wrote is known from a list, not from names: every file a run writes is
appended to ``.physiosync-files`` (with the kind of run) before it appears under its
name (:mod:`physiosync._utils.manifest`). A file is the run's only if it is listed
there; any other file anywhere in the folder, inside ``folds/`` too, is the user's.
``overwrite=True`` (``--overwrite``) replaces a run recorded in the marker: it deletes
the files listed for that run and nothing else. A folder that holds a file no run
listed is refused, with or without ``--overwrite``, before anything is deleted, and the
message names the file. The log of the kind being run (``run.log``, ``pretrain.log``,
``finetune.log``) is kept and appended to across ``--overwrite``: it is the history of
every attempt in the folder.

Leftovers of killed writers are recognised by physiosync's temporary names only
(``.physiosync-tmp-<pid>-<token>-<name>``, whose pid is not alive on this host); another
program's ``*.tmp`` files are the user's.

Runs of kinds whose files do not collide share a folder: ``pretrain --out ck`` and
then ``finetune --pretrained ck --out ck`` keep both runs in ``ck``.

The lock (``.physiosync.lock``, holding pid, host and a random token) is created
atomically, so two processes never run into one folder at once; the second one stops
with a message naming the holder. A lock left by a killed process (its pid is not
alive on this host) is taken over.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import socket
import uuid
from pathlib import Path

from ._logging import logger
from ._utils import atomic_write
from ._utils.io import is_own_temp, is_stale_temp, pid_alive, temp_name
from ._utils.manifest import MANIFEST, few_names, read_manifest, recording, rewrite_manifest
from ._version import __version__
from .exceptions import RunFolderError

__all__ = ["MARKER", "LOCK", "MANIFEST", "RUN_FILES", "IGNORED_KEYS", "RunFolder",
           "FolderLock", "run_fingerprint", "fingerprint_of", "reports_fingerprint",
           "report_owner", "recording"]

#: Name of the file that records the runs a folder holds.
MARKER = ".physiosync-run.json"
#: Name of the lock file of a run folder.
LOCK = ".physiosync.lock"
#: The files and folders each kind of run writes at the top of its folder.
RUN_FILES = {
    "cv": ("config.yaml", "folds", "report.json", "results.csv", "report.md", "report.html",
           "run.log"),
    "pretrain": ("pretrain_long.pt", "pretrain_short.pt", "pretrain.log"),
    "finetune": ("finetune.pt", "finetune.log"),
    "report": ("report.json", "results.csv", "report.md", "report.html"),
}
#: Configuration keys that do not change what a run computes, left out of its fingerprint:
#: where the cache of prepared arrays lives (its entries are keyed on their inputs), and
#: the torch device (it changes results only at rounding level, and a run started on
#: one machine may be resumed on another), and how pre-training is executed (folds
#: batched together, a compiled step: the same results to rounding), and the threads of
#: each unit (``threads``: floating-point sums split another way, the same results to
#: rounding; a run slowed by a busy machine may be resumed with fewer).
IGNORED_KEYS = (("data", "cache_dir"), ("device",), ("pretrain", "batch_folds"),
                ("pretrain", "compile"), ("threads",))


#: The folder's own bookkeeping, at its top.
_BOOKKEEPING = (MARKER, LOCK, MANIFEST)


def _walk(root: Path) -> list:
    """Relative POSIX paths of every non-folder entry below *root* (links not followed),
    except the folder's bookkeeping and physiosync's temporary names."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in filenames + links:
            if is_own_temp(name) or (rel == Path(".") and name in _BOOKKEEPING):
                continue
            out.append((rel / name).as_posix())
    return sorted(out)


def _flatten(node, prefix: str = "") -> dict:
    """``{"a.b": value}`` of nested mappings; long values shortened, with a digest."""
    if isinstance(node, dict) and node:
        out = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    text = json.dumps(node, sort_keys=True, default=str)
    if len(text) > 60:
        text = text[:40] + "..." + hashlib.sha256(text.encode()).hexdigest()[:8]
    return {prefix[:-1] or "value": text}


def _settings(content: dict) -> dict:
    """The flat ``key -> value`` map of a fingerprint's content, for naming differences."""
    if "config" not in content:
        return _flatten(content)
    out = _flatten(content["config"])
    data = dict(content.get("data") or {})
    # one key per data file, so that a refusal names the file that changed
    for entry in data.pop("files", None) or ():
        name, size, *digest = entry
        out[f"data file {name}"] = (f"{size} bytes" + (f", content {str(digest[0])[:12]}"
                                                       if digest else ""))
    out.update(_flatten(data, "data source."))
    out.update(_flatten(content.get("extra") or {}))
    return out


def _data_identity(root) -> dict:
    """Absolute path of the data source, with the name, size and content hash of its files.

    The files are the root itself when it is a file (``DREAMER.mat``), else the
    non-hidden files directly in the root folder (not those of its subfolders, such as
    DEAP's ``data_preprocessed_python/`` under a top folder: the fold files' content
    key covers those). The content hash is the preparation cache's
    (:func:`~physiosync.preprocessing.cache.content_hash`: whole files up to 8 MiB,
    else a 1.1 MiB sample), taken once per command.
    """
    if root is None:
        return {"root": None}
    path = Path(root).expanduser().resolve()
    out = {"root": str(path)}
    try:
        from .preprocessing.cache import content_hash

        if path.is_file():
            files = [path]
        elif path.is_dir():
            files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
        else:
            return out
        out["files"] = sorted([p.name, p.stat().st_size, content_hash(p)] for p in files)
    except OSError:  # unreadable data fails later with its own message
        pass
    return out


def run_fingerprint(cfg, **extra) -> dict:
    """The fingerprint of a run: its resolved configuration and its data source.

    Parameters
    ----------
    cfg : RunConfig
        The validated configuration. The keys in :data:`IGNORED_KEYS` and those the run
        does not use (:func:`physiosync.config.ignored_keys`) are left out.
    **extra
        Further inputs that decide the results (JSON-serialisable), for example the
        pre-trained checkpoints of ``finetune``.

    Returns
    -------
    fingerprint : dict
        ``sha256`` (hex digest of everything below), ``config`` (SHA-256 of the
        configuration alone), ``data`` (absolute data root with the names, sizes and
        content hashes of its files, see :func:`_data_identity`, and those of
        ``data.ratings_csv`` where given) and ``extra``.
    """
    from .config import used_config

    tree = used_config(cfg)  # keys the run does not use cannot make it another run
    for keys in IGNORED_KEYS:
        node = tree
        for key in keys[:-1]:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(keys[-1], None)
    data = _data_identity(tree.get("data", {}).get("root"))
    section = tree.get("data")
    if isinstance(section, dict):
        section["root"] = data["root"]  # a relative root is the same data from anywhere
        # None (found beside the data) leaves the fingerprints of earlier runs as they were
        ratings = section.pop("ratings_csv", None)
        if ratings is not None:  # the ratings are the labels: the file's content counts
            identity = _data_identity(ratings)
            section["ratings_csv"] = identity["root"]
            data["ratings_csv"] = identity.get("files", [])
    return fingerprint_of({"config": tree, "data": data, "extra": extra})


def fingerprint_of(content: dict) -> dict:
    """``{"sha256": ..., **summary}`` of a JSON-serialisable mapping (sorted keys)."""
    def digest(obj):
        text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    out = {"sha256": digest(content)}
    if "config" in content:
        out["config"] = digest(content["config"])
    for key in ("data", "extra"):
        if key in content:
            out[key] = content[key]
    # not part of the digest: lets a refusal name the keys that differ
    out["settings"] = _settings(content)
    return out


def reports_fingerprint(reports, names) -> dict:
    """The fingerprint of a report folder made from *reports* (``physiosync report``).

    Parameters
    ----------
    reports : list of dict
        The ``report.json`` contents rendered (or merged) into the folder.
    names : list of str
        The name given to each report (its run folder's name), in order.

    Returns
    -------
    fingerprint : dict
        :func:`fingerprint_of` the SHA-256 of each report's JSON (sorted keys) and the
        names: the same reports under the same names give the same fingerprint.
    """
    digests = [hashlib.sha256(json.dumps(r, sort_keys=True).encode()).hexdigest()
               for r in reports]
    return fingerprint_of({"reports": digests, "names": list(names)})


def report_owner(folder) -> str | None:
    """The kind of run (``"cv"`` or ``"report"``) whose report files *folder* holds, or None.

    Only a folder whose marker records such a run, and whose list of written files names
    every report file present, may have its report re-rendered in place; anything else
    goes through the run-folder rules (a user's own ``report.json`` is never replaced).

    Parameters
    ----------
    folder : str | Path
        A folder that may be a run folder.

    Returns
    -------
    kind : str | None
        ``"cv"`` or ``"report"``; None when the folder is no such run folder, its marker
        is unreadable, or a report file in it was written by something else.
    """
    try:
        runs = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))["runs"]
        listed = read_manifest(folder)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    kind = next((k for k in ("cv", "report") if isinstance(runs, dict) and k in runs), None)
    if kind is None:
        return None
    if listed is None:  # a run folder of an older physiosync, which kept no list
        return kind
    present = [n for n in RUN_FILES["report"] if (Path(folder) / n).exists()]
    return kind if all(listed.get(n) == kind for n in present) else None


_pid_alive = pid_alive


class FolderLock:
    """An exclusive lock on a folder: the file ``.physiosync.lock`` with pid, host, token.

    The lock file appears atomically with its whole content (written to a private file,
    then hard-linked to the lock's name, which fails if the lock exists; ``O_EXCL``
    where hard links are not supported). A lock whose pid is not alive on this host is
    stale: it is renamed to a private name (an atomic step only one process can win),
    checked to be the very lock judged stale, and removed; a lock taken over by another
    process in between is put back.

    Parameters
    ----------
    folder : str | Path
        The folder to lock (created if missing).
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.path = self.folder / LOCK
        self.token = None

    def _write_new(self) -> bool:
        """Create the lock file; False if it exists."""
        info = {"pid": os.getpid(), "host": socket.gethostname(), "token": uuid.uuid4().hex,
                "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        text = json.dumps(info)
        tmp = temp_name(self.path)
        try:
            with open(tmp, "x", encoding="utf-8") as fh:  # a full disk fails here
                fh.write(text)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            return False
        except OSError:  # no hard links here: O_EXCL (content follows the creation)
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
            except BaseException:  # leave no empty lock behind
                self.path.unlink(missing_ok=True)
                raise
        finally:
            tmp.unlink(missing_ok=True)
        self.token = info["token"]
        return True

    def _read(self, path=None):
        try:
            return json.loads(Path(path or self.path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # being written (O_EXCL fallback) or damaged

    def holder(self) -> dict | None:
        """The content of the current lock (``pid``, ``host``, ``token``), or None."""
        return self._read()

    def _is_stale(self, info: dict) -> bool:
        return (isinstance(info.get("pid"), int) and info.get("host") == socket.gethostname()
                and not _pid_alive(info["pid"]))

    def _take_over(self, stale: dict) -> None:
        aside = temp_name(self.folder / f"{LOCK}.stale")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return  # someone else removed it first
        if self._read(aside).get("token") == stale.get("token"):
            aside.unlink(missing_ok=True)
            return
        # Another process took the lock over between our read and our rename: restore it.
        try:
            os.link(aside, self.path)
        except OSError:
            pass
        aside.unlink(missing_ok=True)

    def acquire(self) -> "FolderLock":
        """Take the lock, or raise :class:`RunFolderError` naming its holder."""
        created = not self.folder.exists()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RunFolderError(f"cannot create the run folder {self.folder}: "
                                 f"{err.strerror or err}; choose another --out.") from None
        for _ in range(5):
            try:
                if self._write_new():
                    return self
            except OSError as err:
                if created:  # leave no empty folder behind (e.g. on a full disk)
                    with contextlib.suppress(OSError):
                        self.folder.rmdir()
                raise RunFolderError(f"cannot write the lock file {self.path}: "
                                     f"{err.strerror or err}; choose another --out.") from None
            info = self._read()
            if info is None:
                continue  # released meanwhile: try again
            if self._is_stale(info):
                self._take_over(info)
                continue
            break
        info = self._read() or {}
        who = (f"process {info['pid']} on {info.get('host', '?')}" if "pid" in info
               else "another process")
        raise RunFolderError(f"{self.folder} is in use by {who} (lock {self.path}); wait "
                             "for it to finish, or use another --out. If no physiosync run "
                             "is using it, delete the lock file.")

    def release(self) -> None:
        """Remove the lock if it is still ours; never raises.

        A lock that cannot be removed (a folder made read-only) is logged as a warning:
        raising here would hide the error that ended the run, and the lock is stale as
        soon as this process ends, so the next run takes it over.
        """
        token, self.token = self.token, None
        if token is None:
            return
        try:
            if (self._read() or {}).get("token") == token:
                self.path.unlink(missing_ok=True)
        except OSError as err:
            logger.warning("could not remove the lock %s (%s); the next run takes it over "
                           "once this process has ended.", self.path, err.strerror or err)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


class RunFolder:
    """A locked run folder that holds one run of each kind, identified by fingerprint.

    Parameters
    ----------
    path : str | Path
        The run folder (``--out``); created if missing.
    kind : {"cv", "pretrain", "finetune", "report"}
        What the run writes (:data:`RUN_FILES`).
    fingerprint : dict
        From :func:`run_fingerprint` (its ``sha256`` identifies the run).
    description : str
        A few words saying what the run is (for messages), e.g. ``"target valence,
        within-trial-kfold, pipelines physiosync"``.
    overwrite : bool
        Replace a different run of this kind (or of a kind whose files collide)
        recorded in the folder: delete the files listed for it. Files that no run
        listed are never deleted; a folder holding one is refused.

    Attributes
    ----------
    state : {"new", "resume", "overwrite"}
        Decided on entering.
    """

    def __init__(self, path, kind: str, fingerprint: dict, *, description: str = "",
                 overwrite: bool = False):
        if kind not in RUN_FILES:
            raise ValueError(f"kind must be one of {', '.join(RUN_FILES)}, got {kind!r}.")
        self.path = Path(path)
        self.kind, self.fingerprint = kind, fingerprint
        self.description, self.overwrite = description, overwrite
        self.state = None
        self._lock = FolderLock(self.path)
        self._created = False
        self._claimed = False
        self._before = set()
        self._replace = []
        self._adopt = {}
        self._recording = contextlib.ExitStack()

    # ---- reading the folder -----------------------------------------------------------
    def _marker(self) -> dict | None:
        path = self.path / MARKER
        if not path.exists():
            return None
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(doc.get("runs"), dict):
                raise ValueError("no 'runs' mapping")
        except (OSError, ValueError, AttributeError) as err:
            raise RunFolderError(f"{path} is damaged ({err}); physiosync cannot tell what "
                                 f"{self.path} holds. Use another --out.") from None
        return doc

    def _listed(self) -> dict | None:
        try:
            return read_manifest(self.path)
        except OSError as err:
            raise RunFolderError(f"cannot read {self.path / MANIFEST}: {err.strerror or err}; "
                                 "physiosync cannot tell which files it wrote there. Use "
                                 "another --out.") from None

    def _describe(self, kind: str, run: dict) -> str:
        what = f"a {kind} run"
        if run.get("description"):
            what += f" ({run['description']})"
        if run.get("created"):
            what += f" from {run['created']}"
        return what

    def _differences(self, run: dict) -> str:
        """``"; they differ in seed (0 there, 1 here), ..."``, or why that cannot be said."""
        old, new = run.get("settings"), self.fingerprint.get("settings")
        if not isinstance(old, dict) or not isinstance(new, dict):
            made = run.get("physiosync", "of an older version")
            return (f"; its record, made by physiosync {made}, does not list its settings, "
                    "so what differs cannot be named (a run of an older physiosync cannot "
                    "be resumed by this one)")
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if not keys:
            return (f"; their settings agree, so the record was made by another physiosync "
                    f"({run.get('physiosync', 'unknown version')}) that fingerprints runs "
                    "differently, and the run cannot be resumed by this one")
        shown = ", ".join(f"{k} ({old.get(k, 'unset')} there, {new.get(k, 'unset')} here)"
                          for k in keys[:3])
        more = f" and {len(keys) - 3} more keys" if len(keys) > 3 else ""
        return f"; they differ in {shown}{more}"

    def _check(self) -> None:
        files = _walk(self.path)
        self._before = {rel.split("/")[0] for rel in files}
        marker = self._marker()
        runs = dict(marker["runs"]) if marker else {}
        listed = self._listed()
        # A folder of an older physiosync (a marker, no list of files): its runs' files at
        # the top are known by name; what lies in their folders (folds/) is not listed.
        self._adopt = {}
        older = marker is not None and listed is None
        if older:
            for kind in runs:
                for name in RUN_FILES.get(kind, ()):
                    if (self.path / name).is_file():
                        self._adopt[name] = kind
        listed = {**(listed or {}), **self._adopt}
        same = runs.get(self.kind, {}).get("fingerprint") == self.fingerprint["sha256"]
        if same and not self.overwrite:
            self.state = "resume"
            return
        mine = set(RUN_FILES[self.kind])
        clash = {k: r for k, r in runs.items()
                 if k == self.kind or mine & set(RUN_FILES.get(k, ()))}
        unlisted = [rel for rel in files if listed.get(rel) not in RUN_FILES
                    # the log of an attempt killed before it claimed the folder (the log
                    # starts first): only ever appended to, never replaced
                    and not (marker is None and rel == "run.log")]
        # Files inside an older version's run folders (folds/) are that run's while it is
        # kept; they are not listed, so --overwrite does not delete them: refused below.
        going = {n for k in clash for n in RUN_FILES.get(k, ())} if self.overwrite else set()
        legacy = {rel for rel in unlisted if older and "/" in rel
                  and rel.split("/")[0] in {n for k in runs for n in RUN_FILES.get(k, ())}
                  and rel.split("/")[0] not in going}
        foreign = [rel for rel in unlisted if rel not in legacy]
        if foreign:
            shown = few_names(foreign)
            raise RunFolderError(
                f"{self.path} holds files that physiosync did not write ({shown}); it does "
                "not overwrite or delete them, even with --overwrite: move them away or use "
                "another --out.")
        if clash and not self.overwrite:
            kind, run = next(iter(clash.items()))
            raise RunFolderError(
                f"{self.path} holds {self._describe(kind, run)}, not this {self.kind} run"
                + (f" ({self.description})" if self.description else "")
                + self._differences(run)
                + "; use --overwrite to replace it, or another --out.")
        self._replace = list(clash)
        self.state = "overwrite" if clash or same else "new"

    # ---- context ----------------------------------------------------------------------
    def __enter__(self) -> "RunFolder":
        self._created = not self.path.exists()
        if self.path.exists() and not self.path.is_dir():
            raise RunFolderError(f"--out {self.path} is a file, not a folder; choose another "
                                 "--out.")
        self._lock.acquire()
        try:
            self._check()
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, *exc):
        self._close()
        return False

    def _close(self) -> None:
        # Nothing here may raise: it would hide the error that ended the run.
        try:
            self._recording.close()
            if self.state == "new" and not self._claimed:
                # Failed before claiming (e.g. a pre-flight check): remove what this
                # attempt wrote (a run.log), so that the folder is as empty as it was.
                for name in RUN_FILES[self.kind]:
                    target = self.path / name
                    if name not in self._before and target.is_file():
                        with contextlib.suppress(OSError):
                            target.unlink()
        finally:
            self._lock.release()
            if self._created and not self._claimed:  # leave no empty folder behind
                with contextlib.suppress(OSError):
                    self.path.rmdir()

    # ---- writing ----------------------------------------------------------------------
    def _sweep(self) -> None:
        """Remove temporary files that killed physiosync processes left (their pid is gone).

        Every writer holds the lock, so none of these is being written now; only names
        of physiosync's own form are considered, never another program's ``*.tmp``.
        """
        for dirpath, _, filenames in os.walk(self.path):
            for name in filenames:
                if is_stale_temp(name):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(dirpath, name))

    def _delete(self, kind: str, listed: dict) -> None:
        """Delete the files *listed* for *kind* (and then-empty folders), unlisting them."""
        keep = ({n for n in RUN_FILES[self.kind] if n.endswith(".log")}
                if kind == self.kind else set())  # this run's log, open and appended to
        folders = set()
        for rel in sorted(r for r, k in listed.items() if k == kind and r not in keep):
            target = self.path / rel
            if target.is_symlink() or target.is_file():
                target.unlink()
            elif target.exists():  # a listed name that is now a folder: not ours
                continue
            del listed[rel]
            folders.update(Path(rel).parents)
        for name in RUN_FILES.get(kind, ()):  # an older version's folders (folds/)
            if (self.path / name).is_dir() and not (self.path / name).is_symlink():
                for dirpath, _, _ in os.walk(self.path / name):
                    folders.add(Path(dirpath).relative_to(self.path))
        for rel in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            if rel.parts:  # rmdir removes empty folders only: a user's file keeps its own
                with contextlib.suppress(OSError):
                    (self.path / rel).rmdir()

    def claim(self, **info) -> None:
        """Record this run in the folder, first deleting the runs it replaces.

        Call it after the last check and before writing any result. *info* (JSON-
        serialisable) is stored with the run, e.g. the data source. From here until the
        ``with`` block ends, every file written below the folder is listed as this run's.
        """
        if self.state is None:
            raise RuntimeError("RunFolder.claim() outside its `with` block.")
        self._sweep()
        marker = self._marker() or {"runs": {}}
        runs = marker["runs"]
        listed = {**(self._listed() or {}), **self._adopt}
        if not (self.state == "resume" and self.kind in runs):
            for kind in self._replace:
                self._delete(kind, listed)
                runs.pop(kind, None)
            runs[self.kind] = {"fingerprint": self.fingerprint["sha256"],
                               "description": self.description, "physiosync": __version__,
                               "created": _now(),
                               **{k: v for k, v in self.fingerprint.items() if k != "sha256"},
                               **info}
        for name in RUN_FILES[self.kind]:  # logs are appended, not written atomically
            if name.endswith(".log"):
                listed.setdefault(name, self.kind)
        rewrite_manifest(self.path, listed)
        self._claimed = True
        atomic_write(self.path / MARKER, json.dumps({"format": 2, "runs": runs}, indent=2,
                                                   sort_keys=True))
        self._recording.enter_context(recording(self.path, self.kind))


def lock_holds(folder, token: str) -> bool:
    """Whether the lock of *folder* exists and holds *token* (read-only).

    Parameters
    ----------
    folder : str | Path
        A run folder.
    token : str
        The ``token`` of a :class:`FolderLock` (its ``token`` attribute, or
        ``FolderLock(folder).holder()["token"]``).

    Returns
    -------
    held : bool
        False when the lock is gone, unreadable or taken by another process.
    """
    info = FolderLock(folder).holder()
    return isinstance(info, dict) and info.get("token") == token
