"""Seeded fuzzing of the file readers: every input ends in success or a clear refusal.

    python benchmarks/fuzz.py --n 10000 --seed 0 --out results/fuzz [--readers dat,bdf]
    python benchmarks/fuzz.py --n 0 --integrity 20 --out results/integrity

The integrity families (``--integrity N``: data changed in place, edited fold files and
cache metadata, writers pointed at folders of a user's files) are described in
``benchmarks/_integrity.py``.

Nine readers are fuzzed with mutations of valid files that the synthetic writers produce:

* ``dat``: a DEAP ``sXX.dat`` read through :class:`physiosync.datasets.DEAP` (the restricted
  pickle reader);
* ``bdf``: a DEAP ``sXX.bdf`` in a ``data_original`` folder, read the same way;
* ``dreamer``: ``DREAMER.mat`` through :class:`physiosync.datasets.DREAMER`, one subject
  loaded;
* ``amigos``: an AMIGOS ``Data_Preprocessed_P01.mat`` through
  :class:`physiosync.datasets.AMIGOS`, the participant loaded;
* ``seed``: a SEED session file ``Preprocessed_EEG/1_20131027.mat`` through
  :class:`physiosync.datasets.SEED`, its subject loaded;
* ``seed-iv``: a SEED-IV session file ``eeg_raw_data/1/1_20160518.mat`` through
  :class:`physiosync.datasets.SEEDIV` (whose rate check reads its variable list first);
* ``checkpoint``: a tiny pre-training checkpoint through :func:`physiosync.load_checkpoint`;
* ``config``: the shipped configurations (``physiosync/configs/*.yaml``) through :func:`physiosync.config.load_config`;
* ``mahnob``: a MAHNOB-HCI ``Sessions`` folder through :class:`physiosync.datasets.MAHNOB`,
  one subject loaded, with either its ``session.xml`` or its BDF file mutated.

Mutations: truncation, byte flips, random splices and insertions, random bytes, and per
format extreme header fields (BDF record and sample counts, channel counts, physical and
digital ranges; MAT element sizes inside and outside the compressed streams; pickle
length fields and deep nesting; checkpoint configuration values and tensor shapes; YAML
deep nesting, alias bombs, huge numbers and non-UTF-8 bytes; XML entity bombs, external
entities, deep nesting and extreme attribute values).

The outcome rule: success, or a :class:`~physiosync.PhysioSyncError` whose message names
the file (for configurations a :class:`~physiosync.config.ConfigError`), each input within
``--seconds`` (default 10 s). Anything else, including ``MemoryError`` under the address
space cap (``--max-memory``, default 4 GiB, set on the worker process), is a finding: the
input is saved under ``OUT/findings/`` with its traceback. The campaign runs in a child
process so that a crash or an allocation bomb cannot take the caller with it. The summary
(per reader: inputs, successes, refusals by exception class, other outcomes, slowest input
and peak RSS growth) is printed and written to ``OUT/fuzz.json`` and ``OUT/fuzz.md``.
The exit status is 1 when there is any finding, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _integrity  # noqa: E402  (beside this script)

READERS = ("dat", "bdf", "dreamer", "amigos", "seed", "seed-iv", "checkpoint", "config",
           "mahnob")
# Share of the inputs per reader (even: every reader takes well under a minute per
# 2,000 inputs on one core).
WEIGHTS = {"dat": 1.0, "bdf": 1.0, "dreamer": 1.0, "amigos": 1.0, "seed": 1.0, "seed-iv": 1.0,
           "checkpoint": 1.0, "config": 1.0, "mahnob": 1.0}
REPO = Path(__file__).resolve().parents[1]

EXTREME_INTS = (0, 1, -1, 2**31 - 1, 2**31, 2**32 - 1, 2**63 - 1, 10**12, 99_999_999)
EXTREME_TEXT = (b"-1", b"0", b"1", b"99999999", b"-9999999", b"1e308", b"-1e308", b"nan",
                b"inf", b"abc", b"", b"        ", b"0.000001", b"1e-300", b"\xff\xfe")


class InputTimeout(BaseException):
    """Raised by the alarm when one input runs past its time bound.

    A ``BaseException`` so that no ``except Exception`` in a reader can swallow it.
    """


# ----------------------------------------------------------------------- mutations
def mutations(data: bytes, n: int, seed: int):
    """Yield *n* seeded generic mutations of *data*.

    Truncations, byte flips, splices of random bytes and files of random bytes, in turn.
    """
    rng = np.random.default_rng(seed)
    for i in range(n):
        yield generic_mutation(data, rng, i % 4)


def generic_mutation(data: bytes, rng: np.random.Generator, kind: int | None = None) -> bytes:
    """One generic mutation of *data*; *kind* 0-3 picks it, ``None`` draws one."""
    kind = int(rng.integers(0, 5)) if kind is None else kind
    n = max(len(data), 1)
    if kind == 0:  # truncation
        return data[: int(rng.integers(0, n))]
    if kind == 1:  # byte flips
        buf = bytearray(data)
        if buf:
            for pos in rng.integers(0, len(buf), size=int(rng.integers(1, 9))):
                buf[pos] = int(rng.integers(0, 256))
        return bytes(buf)
    if kind == 2:  # splice: a random range replaced by random bytes
        a, b = sorted(int(x) for x in rng.integers(0, n, size=2))
        return data[:a] + rng.bytes(int(rng.integers(0, 64))) + data[b:]
    if kind == 3:  # random bytes
        return rng.bytes(int(rng.integers(0, 2 * n)))
    # insertion: a copy of another part of the file, or random bytes
    pos = int(rng.integers(0, n))
    if rng.random() < 0.5:
        a = int(rng.integers(0, n))
        chunk = data[a: a + int(rng.integers(1, 4096))]
    else:
        chunk = rng.bytes(int(rng.integers(1, 256)))
    return data[:pos] + chunk + data[pos:]


def _put_u32(buf: bytearray, pos: int, value: int, endian: str = "<") -> None:
    if 0 <= pos <= len(buf) - 4:
        buf[pos: pos + 4] = struct.pack(endian + "I", value % 2**32)


def _extreme_u32(rng, size_hint: int) -> int:
    choices = (0, 1, 2**31 - 1, 2**32 - 1, size_hint * 1000, size_hint + 1, 2**30)
    return int(choices[int(rng.integers(len(choices)))])


# DEAP .dat (pickle)
def dat_structured(data: bytes, rng) -> bytes:
    kind = int(rng.integers(0, 3))
    if kind == 0:  # deep nesting of lists (or a tuple key) in place of the whole file
        depth = int(rng.choice([10, 100, 1_000, 10_000, 100_000]))
        if rng.random() < 0.5:
            return b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."
        return b"\x80\x02}K\x00" + b"\x85" * depth + b"Ns."
    if kind == 1:  # a length field after a string/bytes opcode set to an extreme value
        buf = bytearray(data)
        spots = [i for i, c in enumerate(buf) if c in b"TXBU"]
        for pos in rng.choice(spots, size=min(len(spots), int(rng.integers(1, 4))),
                              replace=False) if spots else []:
            _put_u32(buf, int(pos) + 1, _extreme_u32(rng, len(data)))
        return bytes(buf)
    # a huge container announced up front: many MARKs or a long run of an opcode
    pos = int(rng.integers(2, max(len(data), 3)))
    op = bytes([int(rng.choice(list(b"(]}N)")))])
    return data[:pos] + op * int(rng.choice([1_000, 100_000])) + data[pos:]


# BDF
_BDF_SIGNAL_FIELDS = (("label", 16), ("transducer", 80), ("unit", 8), ("phys_min", 8),
                      ("phys_max", 8), ("dig_min", 8), ("dig_max", 8), ("prefilter", 80),
                      ("n_samples", 8), ("reserved", 32))


def bdf_structured(data: bytes, rng) -> bytes:
    """Set one or more BDF header fields to extreme values."""
    buf = bytearray(data)
    try:
        n_signals = int(buf[252:256])
    except ValueError:
        n_signals = 0
    for _ in range(int(rng.integers(1, 4))):
        value = EXTREME_TEXT[int(rng.integers(len(EXTREME_TEXT)))]
        if n_signals <= 0 or rng.random() < 0.4:  # a main-header field
            start, width = [(184, 8), (236, 8), (244, 8), (252, 4), (168, 8),
                            (176, 8)][int(rng.integers(6))]
        else:
            field = int(rng.integers(len(_BDF_SIGNAL_FIELDS)))
            offset = 256 + sum(w for _, w in _BDF_SIGNAL_FIELDS[:field]) * n_signals
            width = _BDF_SIGNAL_FIELDS[field][1]
            start = offset + width * int(rng.integers(n_signals))
        buf[start: start + width] = value[:width].ljust(width)
    return bytes(buf)


# MATLAB v5
def _mat_elements(data: bytes):
    """(start, type, nbytes) of the top-level elements of a little-endian MAT-file."""
    pos, out = 128, []
    while pos + 8 <= len(data):
        mtype, nbytes = struct.unpack_from("<II", data, pos)
        out.append((pos, mtype, nbytes))
        pos += 8 + nbytes + (-nbytes % 8 if mtype != 15 else 0)
    return out


def mat_structured(data: bytes, rng) -> bytes:
    """Extreme declared sizes, outside and inside the compressed streams."""
    elements = _mat_elements(data)
    if not elements:
        return generic_mutation(data, rng)
    start, mtype, nbytes = elements[int(rng.integers(len(elements)))]
    if mtype != 15 or rng.random() < 0.3:  # the outer tag
        buf = bytearray(data)
        _put_u32(buf, start + 4, _extreme_u32(rng, nbytes))
        return bytes(buf)
    try:
        inner = bytearray(zlib.decompress(data[start + 8: start + 8 + nbytes]))
    except zlib.error:
        return generic_mutation(data, rng)
    for _ in range(int(rng.integers(1, 4))):  # sizes and dimensions are aligned u32
        pos = 4 * int(rng.integers(0, max(min(len(inner), 4096) // 4, 1)))
        if rng.random() < 0.5:
            _put_u32(inner, pos, _extreme_u32(rng, len(inner)))
        else:
            inner[pos: pos + 1] = bytes([int(rng.integers(0, 256))])
    body = zlib.compress(bytes(inner), 1)
    return (data[:start] + struct.pack("<II", 15, len(body)) + body
            + data[start + 8 + nbytes:])


# checkpoints
_ODD_VALUES = (0, -1, 1, 3, 10**12, 2**62, 2.5, float("nan"), float("inf"), "", "x", None,
               [], {}, [1, 2], [10**9, 10**9], True, {"a": {"b": 1}})


def checkpoint_structured(original: dict, rng, path: Path) -> None:
    """Write a well-formed checkpoint whose configuration or weights hold odd values."""
    import torch

    data = dict(original, config=dict(original["config"]), model=dict(original["model"]))
    for _ in range(int(rng.integers(1, 4))):
        r = rng.random()
        if r < 0.6:
            keys = list(data["config"])
            data["config"][keys[int(rng.integers(len(keys)))]] = \
                _ODD_VALUES[int(rng.integers(len(_ODD_VALUES)))]
        elif r < 0.9:
            keys = list(data["model"])
            shape = [int(x) for x in rng.integers(0, 5, size=int(rng.integers(0, 4)))]
            data["model"][keys[int(rng.integers(len(keys)))]] = torch.zeros(shape)
        else:
            keys = [k for k in data if k not in ("model", "config")]
            data[keys[int(rng.integers(len(keys)))]] = \
                _ODD_VALUES[int(rng.integers(len(_ODD_VALUES)))]
    torch.save(data, path)


# YAML configurations
_YAML_VALUES = ("-1", "0", "1e9", "1e308", ".nan", ".inf", "[]", "{}", "null", "true", "'x'",
                "[1, 'a', null]", "[1e9, 1e9, 1e9]", "99999999999999999999", "-0.5",
                "{a: {b: {c: 1}}}", "!!python/object:os.system ls", "*undefined", "&a 1")


def config_structured(text: bytes, rng) -> bytes:
    kind = int(rng.integers(0, 5))
    lines = text.split(b"\n")
    if kind == 0:  # a value replaced by an odd one
        idx = [i for i, ln in enumerate(lines) if b":" in ln and not ln.lstrip().startswith(b"#")]
        if idx:
            i = idx[int(rng.integers(len(idx)))]
            key = lines[i].split(b":", 1)[0]
            lines[i] = key + b": " + _YAML_VALUES[int(rng.integers(len(_YAML_VALUES)))].encode()
        return b"\n".join(lines)
    if kind == 1:  # deep nesting
        depth = int(rng.choice([10, 100, 1_000, 10_000, 100_000]))
        return text + b"\nextra: " + b"[" * depth + b"]" * depth + b"\n"
    if kind == 2:  # an alias bomb in a list-valued key
        bomb = [b"a0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9]"]
        for j in range(1, int(rng.integers(3, 12))):
            bomb.append(b"a%d: &a%d [" % (j, j) + b", ".join([b"*a%d" % (j - 1)] * 9) + b"]")
        key = (b"  loss_weights", b"  hidden", b"  projector_dims")[int(rng.integers(3))]
        section = b"pretrain:" if key != b"  hidden" else b"finetune:"
        return (b"_bomb:\n" + b"\n".join(b"  " + ln for ln in bomb) + b"\n" + section + b"\n"
                + key + b": *a%d\n" % (len(bomb) - 1))
    if kind == 3:  # non-UTF-8 bytes somewhere
        pos = int(rng.integers(0, max(len(text), 1)))
        return text[:pos] + bytes([int(rng.integers(0x80, 0x100))]) * 2 + text[pos:]
    # a huge or odd number in place of a number
    buf = bytearray(text)
    digits = [i for i, c in enumerate(buf) if 48 <= c <= 57]
    if digits:
        i = digits[int(rng.integers(len(digits)))]
        buf[i: i + 1] = (b"9" * int(rng.integers(10, 400)) if rng.random() < 0.5 else b"-")
    return bytes(buf)


# XML (MAHNOB-HCI session.xml)
_XML_BOMB = (b'<?xml version="1.0"?>\n<!DOCTYPE session [<!ENTITY a "aaaaaaaaaa">'
             b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
             b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>\n')


def xml_structured(data: bytes, rng) -> bytes:
    """An entity bomb or external entity, deep nesting, or an extreme attribute value."""
    kind = int(rng.integers(0, 4))
    body = data.split(b"?>", 1)[-1]
    if kind == 0:  # an entity-expansion bomb or an external entity before the root
        if rng.random() < 0.5:
            return _XML_BOMB + body.replace(b'feltVlnc="', b'feltVlnc="&c;', 1)
        return b'<!DOCTYPE session SYSTEM "file:///etc/passwd">' + body
    if kind == 1:  # deep nesting inside the root
        depth = int(rng.choice([10, 100, 10_000]))
        pos = body.find(b">") + 1
        return body[:pos] + b"<a>" * depth + b"</a>" * depth + body[pos:]
    if kind == 2:  # an attribute (rating, subject, clip) set to an extreme value
        names = (b"feltVlnc", b"feltArsl", b"feltCtrl", b"feltPred", b"feltEmo", b"id",
                 b"mediaFile")
        name = names[int(rng.integers(len(names)))]
        value = EXTREME_TEXT[int(rng.integers(len(EXTREME_TEXT)))]
        start = data.find(name + b'="')
        if start < 0:
            return data
        start += len(name) + 2
        return data[:start] + value + data[data.find(b'"', start):]
    return data + b" " * int(rng.choice([10, 1 << 20]))  # padding, past the size bound


# ------------------------------------------------------------------------- targets
class Target:
    """One reader: valid seed files, how to mutate them and how to read a mutant."""

    name: str
    suffix: str

    def __init__(self, work: Path):
        self.work = work / self.name
        self.work.mkdir(parents=True, exist_ok=True)

    def seeds(self) -> list[bytes]:
        raise NotImplementedError

    def structured(self, data: bytes, rng) -> bytes:
        return generic_mutation(data, rng)

    def write(self, data: bytes) -> Path:
        self.path.write_bytes(data)
        return self.path

    def make_input(self, rng, seeds) -> Path:
        seed = seeds[int(rng.integers(len(seeds)))]
        data = (self.structured(seed, rng) if rng.random() < 0.4
                else generic_mutation(seed, rng))
        return self.write(data)

    def load(self, path: Path) -> None:
        raise NotImplementedError

    def accepts(self, err: BaseException, path: Path) -> bool:
        from physiosync import PhysioSyncError

        return isinstance(err, PhysioSyncError) and str(path) in str(err)


class DatTarget(Target):
    name, suffix = "dat", ".dat"

    def seeds(self):
        from physiosync.synthetic import make_deap

        root = make_deap(self.work / "seed", n_subjects=1, n_trials=2, seconds=1.0)
        self.folder = self.work / "in"
        self.folder.mkdir(exist_ok=True)
        self.path = self.folder / "s01.dat"
        return [(root / "s01.dat").read_bytes()]

    def structured(self, data, rng):
        return dat_structured(data, rng)

    def load(self, path):
        from physiosync.datasets import DEAP

        DEAP(self.folder).load_subject(1)


class BdfTarget(Target):
    name, suffix = "bdf", ".bdf"

    def seeds(self):
        import shutil

        from physiosync.synthetic import make_deap_bdf

        root = make_deap_bdf(self.work / "seed", n_subjects=1, n_trials=2, seconds=1.0)
        self.folder = self.work / "in" / "data_original"
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / "participant_ratings.csv", self.folder)
        self.path = self.folder / "s01.bdf"
        return [(root / "s01.bdf").read_bytes()]

    def structured(self, data, rng):
        return bdf_structured(data, rng)

    def load(self, path):
        from physiosync.datasets import DEAP

        DEAP(self.folder).load_subject(1)


class DreamerTarget(Target):
    name, suffix = "dreamer", ".mat"

    def seeds(self):
        from physiosync.synthetic import make_dreamer

        out = make_dreamer(self.work / "seed", n_subjects=1, n_trials=2, seconds=1.0)
        out = Path(out)
        out = out / "DREAMER.mat" if out.is_dir() else out
        self.path = self.work / "DREAMER.mat"
        return [out.read_bytes()]

    def structured(self, data, rng):
        return mat_structured(data, rng)

    def load(self, path):
        from physiosync.datasets import DREAMER

        ds = DREAMER(path)
        for subject in ds.subjects[:1]:
            ds.load_subject(subject)


class SeedTarget(Target):
    name, suffix = "seed", ".mat"

    def seeds(self):
        import shutil

        from physiosync.synthetic import make_seed

        src = make_seed(self.work / "seed", n_subjects=1, n_trials=2, seconds=1.0)
        self.folder = self.work / "in" / "Preprocessed_EEG"
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / "label.mat", self.folder)
        self.path = self.folder / "1_20131027.mat"
        return [(src / self.path.name).read_bytes()]

    def structured(self, data, rng):
        return mat_structured(data, rng)

    def load(self, path):
        from physiosync.datasets import SEED

        SEED(self.folder).load_subject(1)


class SeedIVTarget(Target):
    name, suffix = "seed-iv", ".mat"

    def seeds(self):
        import shutil

        from physiosync.synthetic import make_seed_iv

        src = make_seed_iv(self.work / "seed", n_subjects=1, n_trials=2, seconds=4.0,
                           missing_sessions={1: ["2", "3"]}, features=False)
        self.root = self.work / "in"
        (self.root / "eeg_raw_data" / "1").mkdir(parents=True, exist_ok=True)
        shutil.copy(src / "ReadMe.txt", self.root)
        self.path = self.root / "eeg_raw_data" / "1" / "1_20160518.mat"
        return [(src / "eeg_raw_data" / "1" / self.path.name).read_bytes()]

    def structured(self, data, rng):
        return mat_structured(data, rng)

    def load(self, path):
        from physiosync.datasets import SEEDIV

        SEEDIV(self.root).load_subject(1)


class AmigosTarget(Target):
    name, suffix = "amigos", ".mat"

    def seeds(self):
        from physiosync.synthetic import make_amigos

        root = make_amigos(self.work / "seed", n_subjects=1, n_trials=3, seconds=1.0,
                           layout="flat", nan_trials=(), empty_trials=((1, 1),))
        self.folder = self.work / "in"
        self.folder.mkdir(exist_ok=True)
        self.path = self.folder / "Data_Preprocessed_P01.mat"
        return [(root / "Data_Preprocessed_P01.mat").read_bytes()]

    def structured(self, data, rng):
        return mat_structured(data, rng)

    def load(self, path):
        from physiosync.datasets import AMIGOS

        AMIGOS(self.folder).load_subject(1)


class CheckpointTarget(Target):
    name, suffix = "checkpoint", ".pt"

    def seeds(self):
        from physiosync.training.checkpoints import read_checkpoint, save_checkpoint
        from physiosync.params import PretrainConfig
        from physiosync.models.physiosync import PretrainModel

        cfg = PretrainConfig(embed_dim=8, depth=1, n_heads=2, n_prompts=1,
                             projector_dims=(8, 8), cmca_dim=8)
        model = PretrainModel({"eeg": 4, "gsr": 1}, {"eeg": 64, "gsr": 64}, cfg)
        seed = self.work / "seed.pt"
        save_checkpoint(seed, {"kind": "pretrain", "config": model.resolved_config(),
                               "step": 1, "model": model.state_dict()})
        self.original = read_checkpoint(seed)
        self.path = self.work / "fuzz.pt"
        return [seed.read_bytes()]

    def make_input(self, rng, seeds):
        if rng.random() < 0.4:
            checkpoint_structured(self.original, rng, self.path)
            return self.path
        return self.write(generic_mutation(seeds[0], rng))

    def load(self, path):
        from physiosync import load_checkpoint

        load_checkpoint(path)


class ConfigTarget(Target):
    name, suffix = "config", ".yaml"

    def seeds(self):
        self.path = self.work / "fuzz.yaml"
        return [p.read_bytes() for p in sorted((REPO / "physiosync" / "configs").glob("*.yaml"))]

    def structured(self, data, rng):
        return config_structured(data, rng)

    def load(self, path):
        from physiosync.config import load_config

        load_config(Path(path))

    def accepts(self, err, path):
        from physiosync.config import ConfigError

        return isinstance(err, ConfigError)


class MahnobTarget(Target):
    name, suffix = "mahnob", ".bdf"

    def seeds(self):
        import shutil

        from physiosync.synthetic import make_mahnob

        root = make_mahnob(self.work / "seed", n_subjects=1, n_trials=1, seconds=1.0,
                           quirks=False, rest_seconds=1.0)
        self.sessions = self.work / "in" / "Sessions"
        shutil.copytree(root / "Sessions", self.sessions, dirs_exist_ok=True)
        folder = next(p for p in self.sessions.iterdir() if p.is_dir())
        self.files = [folder / "session.xml", next(folder.glob("*.bdf"))]
        return [f.read_bytes() for f in self.files]

    def make_input(self, rng, seeds):
        which = int(rng.integers(2))
        for f, data in zip(self.files, seeds):  # the other file as written
            f.write_bytes(data)
        self.path, self.suffix = self.files[which], self.files[which].suffix
        structured = xml_structured if which == 0 else bdf_structured
        data = (structured(seeds[which], rng) if rng.random() < 0.4
                else generic_mutation(seeds[which], rng))
        return self.write(data)

    def load(self, path):
        from physiosync.datasets import MAHNOB

        ds = MAHNOB(self.sessions)
        for subject in ds.subjects[:1]:
            ds.load_subject(subject)

    def accepts(self, err, path):
        # a session.xml that no longer holds a rated session leaves no subject: that
        # refusal names the Sessions folder it found empty
        return super().accepts(err, path) or (
            type(err).__name__ == "DataNotFoundError" and str(self.sessions) in str(err))


TARGETS = {t.name: t for t in (DatTarget, BdfTarget, DreamerTarget, AmigosTarget, SeedTarget,
                               SeedIVTarget, CheckpointTarget, ConfigTarget, MahnobTarget)}


# ------------------------------------------------------------------------ campaign
def _maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def _current_rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - not Linux
        return _maxrss_bytes()


def _on_alarm(signum, frame):
    raise InputTimeout()


def fuzz_reader(name: str, n: int, seed: int, work: Path, out: Path | None = None,
                seconds: float = 10.0) -> dict:
    """Feed *n* mutated inputs to one reader and classify every outcome.

    Parameters
    ----------
    name : str
        One of :data:`READERS`.
    n : int
        Number of inputs.
    seed : int
        Seed of the generator (the same seed gives the same inputs).
    work : Path
        Scratch folder for the seed files and the mutants.
    out : Path | None
        Where to save inputs that give another outcome (``out/findings``); ``None``
        keeps them nowhere.
    seconds : float
        Time bound of one input; an input still running after it is interrupted and
        counted as a finding.

    Returns
    -------
    dict
        ``inputs``, ``successes``, ``refusals`` (by exception class), ``examples`` (the
        first message of each refusal class), ``other`` (by outcome), ``findings``
        (input number, outcome, message), ``slowest_s``,
        ``slowest_input`` and ``peak_rss_growth_mb``.
    """
    import logging

    target = TARGETS[name](Path(work))
    seeds = target.seeds()
    rng = np.random.default_rng([seed, READERS.index(name)])
    summary = {"inputs": 0, "successes": 0, "refusals": {}, "examples": {}, "other": {},
               "findings": [], "slowest_s": 0.0, "slowest_input": None}
    log = logging.getLogger("physiosync")
    level = log.level
    log.setLevel(logging.CRITICAL)  # the readers' warnings about damaged files are expected
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
    rss0 = _current_rss()
    peak = rss0
    old = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        for i in range(n):
            path = target.make_input(rng, seeds)
            if out is not None:  # names the input if the process dies on it
                (Path(out) / "current.txt").write_text(f"{name} {seed} {i} {path}")
            t0 = time.monotonic()
            outcome = "ok"
            err = None
            try:
                signal.setitimer(signal.ITIMER_REAL, seconds)
                try:
                    target.load(path)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except InputTimeout:
                outcome = f"timeout after {seconds:g} s"
            except BaseException as exc:  # noqa: BLE001 - classifying every outcome
                if isinstance(exc, KeyboardInterrupt):
                    raise
                err = exc
                if target.accepts(exc, path):
                    outcome = "refused"
                else:
                    outcome = type(exc).__name__ + (
                        " (message does not name the file)"
                        if isinstance(exc, Exception) and _is_physiosync(exc) else "")
            elapsed = time.monotonic() - t0
            peak = max(peak, _current_rss())
            summary["inputs"] += 1
            if elapsed > summary["slowest_s"]:
                summary["slowest_s"], summary["slowest_input"] = round(elapsed, 4), i
            if outcome == "ok":
                summary["successes"] += 1
            elif outcome == "refused":
                cls = type(err).__name__
                summary["refusals"][cls] = summary["refusals"].get(cls, 0) + 1
                summary["examples"].setdefault(cls, f"#{i}: {str(err)[:300]}")
            else:
                summary["other"][outcome] = summary["other"].get(outcome, 0) + 1
                message = "".join(traceback.format_exception(err)) if err else outcome
                summary["findings"].append({"input": i, "outcome": outcome,
                                            "message": str(err)[:500] if err else outcome})
                if out is not None:
                    folder = Path(out) / "findings"
                    folder.mkdir(parents=True, exist_ok=True)
                    stem = folder / f"{name}_{seed}_{i:05d}"
                    stem.with_suffix(target.suffix).write_bytes(path.read_bytes())
                    stem.with_suffix(".txt").write_text(message)
    finally:
        signal.signal(signal.SIGALRM, old)
        log.setLevel(level)
    summary["peak_rss_growth_mb"] = round((peak - rss0) / 2**20, 1)
    return summary


def _is_physiosync(exc) -> bool:
    from physiosync import PhysioSyncError

    return isinstance(exc, PhysioSyncError)


def split_inputs(n: int, readers=READERS) -> dict:
    """Split *n* inputs over *readers* by :data:`WEIGHTS` (at least one each)."""
    total = sum(WEIGHTS[r] for r in readers)
    return {r: max(1, int(round(n * WEIGHTS[r] / total))) for r in readers}


def run_campaign(n: int, seed: int, out, readers=READERS, seconds: float = 10.0) -> dict:
    """Run the campaign in this process (see :func:`run_isolated` for the capped child)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"seed": seed, "seconds_per_input": seconds, "readers": {}}
    with tempfile.TemporaryDirectory(prefix="physiosync-fuzz-") as work:
        for name, count in split_inputs(n, readers).items():
            t0 = time.monotonic()
            result["readers"][name] = fuzz_reader(name, count, seed, Path(work), out, seconds)
            result["readers"][name]["wall_s"] = round(time.monotonic() - t0, 1)
    result["inputs"] = sum(r["inputs"] for r in result["readers"].values())
    result["other"] = sum(sum(r["other"].values()) for r in result["readers"].values())
    result["peak_rss_mb"] = round(_maxrss_bytes() / 2**20, 1)
    return result


def run_isolated(n: int, seed: int, out, readers=READERS, seconds: float = 10.0,
                 max_memory: int = 4 << 30, timeout: float | None = None) -> dict:
    """Run :func:`run_campaign` in a child process under an address-space cap.

    A crash of the child (a signal) or a campaign that does not finish is reported in
    the returned summary under ``"crash"``, so the caller always gets one.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--n", str(n),
           "--seed", str(seed), "--out", str(out), "--readers", ",".join(readers),
           "--seconds", str(seconds), "--max-memory", str(max_memory)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"crash": f"the campaign did not finish within {timeout} s", "inputs": 0,
                "other": 1, "readers": {}}
    summary_file = out / "fuzz.json"
    if proc.returncode not in (0, 1) or not summary_file.exists():
        where = ""
        current = out / "current.txt"
        if current.exists():  # keep the input the worker died on
            name, seed_, i, path = current.read_text().split(" ", 3)
            folder = out / "findings"
            folder.mkdir(exist_ok=True)
            saved = folder / f"{name}_{seed_}_{int(i):05d}_crash{Path(path).suffix}"
            if Path(path).exists():
                saved.write_bytes(Path(path).read_bytes())
            where = f" on {name} input {i} (saved as {saved})"
        return {"crash": f"worker exit status {proc.returncode}{where}: "
                         f"{proc.stderr[-2000:]}", "inputs": 0, "other": 1, "readers": {}}
    (out / "current.txt").unlink(missing_ok=True)
    return json.loads(summary_file.read_text())


def to_markdown(result: dict) -> str:
    lines = [f"Fuzzing, seed {result['seed']}: {result['inputs']} inputs, "
             f"{result['other']} outcomes other than success or a clear refusal "
             f"(bound {result['seconds_per_input']:g} s per input, peak RSS "
             f"{result['peak_rss_mb']} MB).", "",
             "| reader | inputs | successes | refusals | other | slowest (s) | "
             "peak RSS growth (MB) |", "|---|---|---|---|---|---|---|"]
    for name, r in result["readers"].items():
        refusals = ", ".join(f"{k} {v}" for k, v in sorted(r["refusals"].items())) or "0"
        other = ", ".join(f"{k} {v}" for k, v in sorted(r["other"].items())) or "0"
        lines.append(f"| {name} | {r['inputs']} | {r['successes']} | {refusals} | {other} | "
                     f"{r['slowest_s']} (#{r['slowest_input']}) | {r['peak_rss_growth_mb']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="inputs in all (default 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="folder for the summary and findings")
    parser.add_argument("--readers", default=",".join(READERS),
                        help="comma-separated subset of " + ",".join(READERS))
    parser.add_argument("--seconds", type=float, default=10.0, help="time bound per input")
    parser.add_argument("--max-memory", type=int, default=4 << 30,
                        help="address-space cap of the worker, bytes (default 4 GiB)")
    parser.add_argument("--integrity", type=int, default=0, metavar="N",
                        help="also run N cases of each integrity family (data changed in "
                             "place, edited fold files and cache metadata, writers pointed "
                             "at folders of user files; see benchmarks/_integrity.py)")
    parser.add_argument("--families", default=",".join(_integrity.FAMILIES),
                        help="integrity families, comma-separated")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.integrity:
        families = tuple(f for f in args.families.split(",") if f)
        if set(families) - set(_integrity.FAMILIES):
            parser.error(f"unknown families; choose from {', '.join(_integrity.FAMILIES)}")
        out = Path(args.out)
        with tempfile.TemporaryDirectory(prefix="physiosync-integrity-") as work:
            result = _integrity.run_integrity(args.integrity, args.seed, Path(work), families)
        out.mkdir(parents=True, exist_ok=True)
        (out / "integrity.json").write_text(json.dumps(result, indent=1))
        (out / "integrity.md").write_text(_integrity.integrity_markdown(result))
        print(_integrity.integrity_markdown(result), end="")
        if args.n == 0:
            return 1 if result["findings"] else 0
    readers = tuple(r for r in args.readers.split(",") if r)
    unknown = set(readers) - set(READERS)
    if unknown:
        parser.error(f"unknown readers {sorted(unknown)}; choose from {', '.join(READERS)}")
    out = Path(args.out)
    if args.worker:
        resource.setrlimit(resource.RLIMIT_AS, (args.max_memory, args.max_memory))
        result = run_campaign(args.n, args.seed, out, readers, args.seconds)
        (out / "fuzz.json").write_text(json.dumps(result, indent=1))
        (out / "fuzz.md").write_text(to_markdown(result))
        return 1 if result["other"] else 0
    (out / "fuzz.json").unlink(missing_ok=True) if out.exists() else None
    result = run_isolated(args.n, args.seed, out, readers, args.seconds, args.max_memory)
    if "crash" in result:
        print("fuzz: the worker crashed:", result["crash"], file=sys.stderr)
        return 1
    print(to_markdown(result), end="")
    return 1 if result["other"] else 0


if __name__ == "__main__":
    sys.exit(main())
