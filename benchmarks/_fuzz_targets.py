"""The fuzz targets of ``benchmarks/fuzz.py``: per reader, its seed files, its mutators
and how a mutant is read.

A :class:`Target` writes valid seed files with a synthetic writer, mutates one (a generic
mutation, or one aimed at the format's fields: :func:`dat_structured`,
:func:`bdf_structured`, :func:`mat_structured`, :func:`checkpoint_structured`,
:func:`config_structured`, :func:`xml_structured`) and loads the mutant through the reader;
:data:`TARGETS` maps each reader's name to its target. The campaign that feeds them and
classifies the outcomes is ``benchmarks/fuzz.py``.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

EXTREME_TEXT = (b"-1", b"0", b"1", b"99999999", b"-9999999", b"1e308", b"-1e308", b"nan",
                b"inf", b"abc", b"", b"        ", b"0.000001", b"1e-300", b"\xff\xfe")


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

