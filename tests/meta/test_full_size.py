"""The full-size synthetic copies (benchmarks/_full_size.py) and the ``prepare`` benchmark
on every dataset (benchmarks/run.py), on shrunk copies only (the full-size figures are
measured alone, not here)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from _benchmarks import BENCHMARKS, load_benchmark
from physiosync.dataset_specs import DATASET_SPECS

ROOT = Path(__file__).resolve().parents[2]
# imported as the scripts import it (from beside them), the same module as theirs
sys.path.insert(0, str(BENCHMARKS))
from _full_size import FULL_SIZE  # noqa: E402

RUN = load_benchmark("run")
#: A quick copy: 2 subjects, 2 clips per session of about 6 s.
SHRINK = dict(subjects=2, trials=2, seconds=6.0)


def _bdf_values(path: Path) -> int:
    header = path.read_bytes()[:256]
    n_signals = int(header[252:256])
    return (path.stat().st_size - 256 * (n_signals + 1)) // 3


def _mat(path: Path) -> dict:
    import scipy.io

    return scipy.io.loadmat(path)


def _stored(name: str, root: Path) -> tuple[list, int]:
    """Values stored per memory unit in the files the reader reads, and the bytes of
    the other files, counted from the files themselves."""
    if name == "deap":
        units = []
        for p in sorted(root.glob("s*.dat")):
            with open(p, "rb") as f:
                units.append(pickle.load(f, encoding="latin1")["data"].size)  # our own file
        return units, 0
    if name == "dreamer":
        from physiosync.datasets import DREAMER

        ds = DREAMER(root)  # its recordings are views of the file's arrays, trimmed nowhere
        recordings = [ds.load_subject(s) for s in ds.subjects]
        return [sum(rec.baseline(m, t).size + rec.stimulus(m, t).size
                    for rec in recordings for m in rec.modalities for t in rec.trials)], 0
    if name == "amigos":
        return [sum(a.size for a in _mat(p)["joined_data"].ravel())
                for p in sorted(root.rglob("Data_Preprocessed_P*.mat"))], 0
    if name == "mahnob":
        units = {}
        for p in root.rglob("Part_*_S_*.bdf"):
            units[p.name.split("_")[1]] = units.get(p.name.split("_")[1], 0) + _bdf_values(p)
        extra = sum(3 * _bdf_values(p) for p in root.rglob("Part_*_N_*.bdf"))
        return list(units.values()), extra
    folder = root / ("Preprocessed_EEG" if name == "seed" else "eeg_raw_data")
    units = {}
    for p in folder.rglob("*_*.mat"):
        n = sum(v.size for k, v in _mat(p).items() if "_eeg" in k)
        units[p.name.split("_")[0]] = units.get(p.name.split("_")[0], 0) + n
    extra = sum(v.nbytes for p in root.glob("eeg_feature_smooth/*/*.mat")
                for k, v in _mat(p).items() if not k.startswith("__"))
    return list(units.values()), extra


@pytest.mark.parametrize("name", sorted(FULL_SIZE))
def test_the_counted_size_is_what_the_writer_writes(name, tmp_path):
    entry = FULL_SIZE[name].shrunk(**SHRINK)
    size = entry.size()
    root = entry.write(tmp_path / entry.folder)
    units, extra = _stored(name, root)
    assert (max(units), sum(units), extra) == (size.unit_values, size.values, size.extra_bytes)
    width = 3 if name == "mahnob" else 8
    assert size.bytes == width * size.values
    # written once: the marker stops a second write
    stamp = (root / "complete").stat().st_mtime_ns
    assert entry.write(root) == root and (root / "complete").stat().st_mtime_ns == stamp


def test_the_full_size_copies_are_the_releases_sizes():
    sizes = {name: entry.size() for name, entry in FULL_SIZE.items()}
    assert set(sizes) == {n for n, s in DATASET_SPECS.items() if s.synthetic}
    # the numbers docs/data.md gives for each release
    assert (sizes["deap"].subjects, sizes["deap"].trials) == (32, 1280)
    assert sizes["deap"].values == 32 * 40 * 40 * 8064  # 3.3 GB of float64
    assert (sizes["dreamer"].subjects, sizes["dreamer"].trials) == (23, 414)
    assert (sizes["amigos"].subjects, sizes["amigos"].trials) == (40, 40 * 20 - 3 * 4 - 1)
    assert (sizes["mahnob"].subjects, sizes["mahnob"].trials) == (27, 527)
    assert (sizes["seed"].subjects, sizes["seed"].trials) == (15, 15 * 3 * 15)
    assert sizes["seed"].values == 15 * 3 * 62 * (200 * 3394 + 15)  # 15.2 GB of float64
    assert (sizes["seed-iv"].subjects, sizes["seed-iv"].trials) == (15, 15 * 3 * 24)
    assert sizes["dreamer"].unit == "file" and sizes["dreamer"].unit_values == \
        sizes["dreamer"].values
    for entry in FULL_SIZE.values():
        assert entry.full and entry.folder == entry.dataset
        assert entry.description and entry.source.startswith("docs/data.md")
        assert not entry.shrunk(subjects=1).full
    with pytest.raises(ValueError, match="subjects must be 1..27"):
        FULL_SIZE["mahnob"].shrunk(subjects=28)


def _prepare(tmp_path, *args) -> tuple[dict, str]:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "prepare",
                          "--scratch", str(tmp_path), *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


# DEAP (the default, a baseline), AMIGOS (a skipped NaN trial), MAHNOB-HCI (BDF), SEED (no
# baseline); the four writers' sizes are checked above
@pytest.mark.parametrize("name", ["deap", "amigos", "mahnob", "seed"])
def test_prepare_benchmark_reports_windows_and_the_scaled_budget(name, tmp_path):
    spec = DATASET_SPECS[name]
    shrink = ["--subjects", "2", "--trials", "3", "--seconds", "6"]
    result, stderr = _prepare(tmp_path, "--dataset", name, *shrink)
    entry = FULL_SIZE[name].shrunk(subjects=2, trials=3, seconds=6.0)
    size, deap = entry.size(), FULL_SIZE["deap"].size()
    assert "# writing synthetic" in stderr and (tmp_path / entry.folder / "complete").exists()
    assert {"benchmark", "seconds", "peak_rss_mb", "subjects", "source_gb", "cache_gb",
            "windows", "numpy"} <= set(result)  # the keys of the DEAP benchmark
    assert (result["dataset"], result["subjects"]) == (name, 2)
    # every trial the reader keeps (AMIGOS: P01's trial 2 holds NaN and is skipped)
    assert result["trials"] == size.trials - (name == "amigos")
    assert result["size"]["values"] == size.values
    # the default modalities, 1 s windows (the shortest clip of ~6 s - 30 % is 4 s)
    assert {k.rsplit("_", 1)[0] for k in result["windows"]} == set(spec.default_modalities)
    assert all(result["windows"][f"{m}_1s"][0] > 0 for m in spec.default_modalities)
    budget = result["budget"]
    assert budget["seconds"] == pytest.approx(15.0 * size.values / deap.values, abs=0.01)
    assert budget["peak_rss_mb"] == pytest.approx(500.0 * size.unit_values / deap.unit_values,
                                                  abs=0.1)
    memory = result[budget["memory_judged_on"]]
    assert result["within_budget"] == (result["seconds"] <= budget["seconds"]
                                       and memory <= budget["peak_rss_mb"])
    # the anonymous peak leaves out the memory-mapped cache, which VmHWM counts
    assert 0 < result["peak_anon_mb"] <= result["peak_rss_mb"]


def test_prepare_budget_is_deaps_at_deaps_size():
    deap = FULL_SIZE["deap"].size()
    out = RUN.prepare_budget(deap, seconds=7.0, peak_rss_mb=250.0)
    assert out["budget"] == {"seconds": 15.0, "peak_rss_mb": 500.0, "time_scale": 1.0,
                             "memory_scale": 1.0}
    assert out["within_budget"]
    assert not RUN.prepare_budget(deap, seconds=7.0, peak_rss_mb=501.0)["within_budget"]
    seed = FULL_SIZE["seed"].size()
    scaled = RUN.prepare_budget(seed, seconds=60.0, peak_rss_mb=1000.0)["budget"]
    assert scaled["time_scale"] == pytest.approx(seed.values / deap.values, abs=1e-4)
    assert scaled["memory_scale"] == pytest.approx(seed.unit_values / deap.unit_values,
                                                   abs=1e-4)


@pytest.mark.parametrize("args, said", [
    (["--dataset", "seed", "--compare"], "--compare"),
    (["--root", "x", "--subjects", "2"], "do not apply"),
    (["--dataset", "mahnob", "--subjects", "28"], "subjects must be 1..27")])
def test_prepare_refuses_options_that_do_not_apply(args, said, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        RUN.main(["prepare", *args, "--scratch", str(tmp_path)])
    assert said in str(exc.value.code) + capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written
