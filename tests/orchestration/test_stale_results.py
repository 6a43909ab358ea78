"""No stale, edited or damaged result is ever reused (issue 19, sections 2 and 4).

Fold files record the content key of their data and a checksum of their body; a fold
file that fails a check is recomputed with one warning naming it. Cache ``meta.json``
(the ratings) is covered by a checksum. ``report`` reads only what is a report.
"""

import json
import shutil

import pytest

from conftest import kind_fold_kwargs, one_line_error
from physiosync.cli import main
from physiosync.datasets import DEAP
from physiosync.preprocessing.cache import prepare
from physiosync.synthetic import make_deap


def _cv(root, out, cache, *extra):
    return main(["cv", "--dataset", "deap", "--data-root", str(root), "--config", "tiny",
                 "--folds", "2", "--pipelines", "bandpower", "--out", str(out), "-q",
                 "--set", "protocol.one_class=constant", "--set", "protocol.pooled=true",
                 "--cache-dir", str(cache), *extra])


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "run.log"}


@pytest.fixture
def top(tmp_path):
    """A DEAP top folder: the subject files sit in its data_preprocessed_python/."""
    root = tmp_path / "deap"
    make_deap(root / "data_preprocessed_python", n_subjects=3, n_trials=4, seconds=10.0,
              effect=2.0, seed=1, verbose=False)
    return root


def _change_in_place(folder):
    """Change the signals of every subject file in place, same names and sizes, labels
    kept (so the folds keep their units): swap two runs of samples inside the data array
    (offsets 8 KiB apart keep every float whole), as in tests/preprocessing/test_cache.py."""
    for path in sorted(folder.glob("s*.dat")):
        raw = bytearray(path.read_bytes())
        size = len(raw)
        a, b = size // 2, size // 2 + 8192
        raw[a:a + 4096], raw[b:b + 4096] = raw[b:b + 4096], raw[a:a + 4096]
        path.write_bytes(bytes(raw))
        assert path.stat().st_size == size


def _fold_files(run):
    return sorted((run / "folds" / "bandpower").glob("fold_*.json"))


def test_an_edited_fold_metric_is_recomputed_and_the_report_keeps_the_true_value(
        top, tmp_path, caplog):
    run, cache = tmp_path / "run", tmp_path / "cache"
    assert _cv(top, run, cache) == 0
    before = _snapshot(run)
    path = _fold_files(run)[0]
    doc = json.loads(path.read_text())
    assert doc["checksum"] and doc["data_key"]
    true = doc["metrics"]["window"]["accuracy"]
    doc["metrics"]["window"]["accuracy"] = 0.869 if true != 0.869 else 0.5
    path.write_text(json.dumps(doc))
    with caplog.at_level("WARNING", logger="physiosync"):
        assert _cv(top, run, cache) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [f"fold file {path} does not match its checksum (edited or damaged); "
                        "recomputing fold 0."]
    assert _snapshot(run) == before  # fold file, report.json, results.csv byte for byte


def test_a_fold_file_without_schema_version_is_reused_on_resume(top, tmp_path, caplog):
    """Fold files record their schema version in the checksummed body; a file written
    before the version existed (no key, its checksum over the rest) is reused as is."""
    from physiosync.evaluation.runner import fold_checksum
    from physiosync.evaluation.schema import FOLD_VERSION

    run, cache = tmp_path / "run", tmp_path / "cache"
    assert _cv(top, run, cache) == 0
    for path in _fold_files(run):
        doc = json.loads(path.read_text())
        assert doc["schema_version"] == FOLD_VERSION
        assert doc["checksum"] == fold_checksum(doc)  # the version is in the checksummed body
        del doc["schema_version"]
        doc["checksum"] = fold_checksum(doc)
        path.write_text(json.dumps(doc))
    before = _snapshot(run)
    with caplog.at_level("WARNING", logger="physiosync"):
        assert _cv(top, run, cache) == 0
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert _snapshot(run) == before  # reused, not recomputed nor rewritten


def test_metrics_that_do_not_follow_from_the_predictions_are_recomputed(
        deap_dat_dir, tmp_path, caplog):
    """Without a checksum (a file of an older version), the metrics are still checked."""
    import physiosync.evaluation.runner as cv
    from physiosync.evaluation.protocols import make_folds
    from physiosync.training.sampling import SlotData
    from physiosync.preprocessing.windows import make_windows

    windows = make_windows(prepare(DEAP(deap_dat_dir), cache_dir=False), lengths=(5.0,))
    data = SlotData.from_windows(windows, 5.0, target="valence")
    folds = make_folds(data.description[["subject", "trial"]].drop_duplicates().to_numpy(),
                       "loso")[:1]
    kw = dict(kind_fold_kwargs("bandpower", {"eeg": 128.0, "gsr": 128.0}), per_subject=False)
    first = cv.cross_validate(data, folds, tmp_path, **kw)[0]
    path = tmp_path / "fold_00.json"
    true = json.loads(json.dumps(first["metrics"]))
    old = json.loads(json.dumps({k: v for k, v in first.items() if k != "checksum"}))
    old["metrics"]["trial"]["balanced_accuracy"] = 0.123
    path.write_text(json.dumps(old))
    with caplog.at_level("WARNING", logger="physiosync"):
        again = cv.cross_validate(data, folds, tmp_path, **kw)[0]
    assert caplog.text.count("fold file") == 1
    assert f"fold file {path} holds metrics that do not follow from its predictions" in \
        caplog.text
    assert again["metrics"] == true
    assert json.loads(path.read_text())["checksum"] == first["checksum"]


@pytest.mark.parametrize("body", ["[1, 2, 3]", "{\"key\": 3", "null", "\"fold\""])
def test_a_fold_file_of_the_wrong_shape_is_recomputed_with_a_warning(top, tmp_path, caplog,
                                                                     body):
    run, cache = tmp_path / "run", tmp_path / "cache"
    assert _cv(top, run, cache) == 0
    before = _snapshot(run)
    path = _fold_files(run)[1]
    path.write_text(body)
    with caplog.at_level("WARNING", logger="physiosync"):
        assert _cv(top, run, cache) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and warnings[0].startswith(f"fold file {path} ")
    assert warnings[0].endswith("; recomputing fold 1.")
    assert _snapshot(run) == before


def test_data_changed_in_place_recomputes_every_fold_it_fed(top, tmp_path, caplog):
    """The root is DEAP's top folder: the run fingerprint sees none of the subject files,
    the fold files' content key does."""
    run, cache = tmp_path / "run", tmp_path / "cache"
    assert _cv(top, run, cache) == 0
    _change_in_place(top / "data_preprocessed_python")
    with caplog.at_level("WARNING", logger="physiosync"):
        assert _cv(top, run, cache) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"
                and r.getMessage().startswith("fold file")]
    assert warnings == [f"fold file {p} was computed on other data (its data content key "
                        f"differs); recomputing fold {i}." for i, p in enumerate(_fold_files(run))]
    fresh = tmp_path / "fresh"
    assert _cv(top, fresh, cache) == 0  # the same data, folds from scratch
    ours, theirs = _snapshot(run), _snapshot(fresh)
    for name in ("report.json", "results.csv", "folds/bandpower/fold_00.json",
                 "folds/bandpower/fold_01.json"):
        assert ours[name].replace(str(run).encode(), b"") == \
            theirs[name].replace(str(fresh).encode(), b""), name


def test_data_changed_in_place_under_the_root_is_another_run(deap_dat_dir, tmp_path, capsys):
    """Files directly in the data root are in the run fingerprint, content included."""
    root = tmp_path / "d"
    shutil.copytree(deap_dat_dir, root)
    run, cache = tmp_path / "run", tmp_path / "cache"
    assert _cv(root, run, cache) == 0
    before = _snapshot(run)
    _change_in_place(root)
    capsys.readouterr()
    assert _cv(root, run, cache) == 2
    err = one_line_error(capsys)
    assert "holds a cv run" in err and "--overwrite" in err
    assert "they differ in data file s01.dat (" in err  # names the file that changed
    assert _snapshot(run) == before
    assert _cv(root, run, cache, "--overwrite") == 0


def test_edited_ratings_in_meta_json_are_caught_and_recomputed(deap_dat_dir, tmp_path,
                                                                caplog):
    root = tmp_path / "d"
    shutil.copytree(deap_dat_dir, root)
    cache = tmp_path / "cache"
    argv = ["prepare", "deap", str(root), "--cache-dir", str(cache)]
    assert main(argv) == 0
    entry = next(p for p in cache.iterdir() if p.name.startswith("DEAP-s01"))
    meta = json.loads((entry / "meta.json").read_text())
    true = meta["ratings"]["columns"]["valence"][0]
    meta["ratings"]["columns"]["valence"][0] = 9.0 if true < 5 else 1.0  # flips the label
    (entry / "meta.json").write_text(json.dumps(meta))
    with caplog.at_level("WARNING", logger="physiosync"):
        assert main(argv + ["--verify"]) == 0
    assert f"damaged cache entry {entry} (meta.json: checksum mismatch)" in caplog.text
    assert json.loads((entry / "meta.json").read_text())["ratings"]["columns"]["valence"][0] \
        == true
    # and without --verify too: meta.json is checked on every open
    meta["ratings"]["columns"]["valence"][0] = 9.0 if true < 5 else 1.0
    (entry / "meta.json").write_text(json.dumps(meta))
    prepared = prepare(DEAP(root), [1], cache_dir=cache)
    assert prepared[1].ratings["valence"].iloc[0] == true


@pytest.mark.parametrize("body", ["[]", "{}", "3", "not json"])
def test_a_damaged_meta_json_is_a_damaged_entry(deap_dat_dir, tmp_path, caplog, body):
    root = tmp_path / "d"
    shutil.copytree(deap_dat_dir, root)
    cache = tmp_path / "cache"
    fresh = prepare(DEAP(root), [1], cache_dir=cache)[1].ratings.copy()
    entry = next(p for p in cache.iterdir() if not p.name.startswith("."))
    (entry / "meta.json").write_text(body)
    with caplog.at_level("WARNING", logger="physiosync"):
        again = prepare(DEAP(root), [1], cache_dir=cache)
    assert caplog.text.count("damaged cache entry") == 1 and str(entry) in caplog.text
    assert again[1].ratings.equals(fresh)
    assert json.loads((entry / "meta.json").read_text())["checksum"]


@pytest.mark.parametrize("what", ["list", "foreign", "fold", "damaged"])
def test_report_on_what_is_not_a_report_is_one_line_and_writes_nothing(
        top, tmp_path, capsys, what):
    run, cache = tmp_path / "run", tmp_path / "cache"
    assert _cv(top, run, cache) == 0
    target = tmp_path / "input" / "x.json"
    target.parent.mkdir()
    if what == "list":
        target.write_text("[1, 2, 3]")
        expected = f"{target} is not a physiosync report (it holds a JSON list)"
    elif what == "foreign":
        target.write_text(json.dumps({"name": "my package", "version": "1.0"}))
        expected = (f"{target} is not a physiosync report (it has no protocol, target, "
                    "pipelines, folds)")
    elif what == "fold":
        target.write_bytes(_fold_files(run)[0].read_bytes())
        expected = f"{target} is a fold file, not a report"
    else:
        doc = json.loads((run / "report.json").read_text())
        doc["pipelines"]["bandpower"]["folds"] = 7
        target.write_text(json.dumps(doc))
        expected = (f"{target} is a damaged report: pipelines.bandpower.folds is a number "
                    "(expected an array); rerun the run to write it again, or restore the file.")
    before = _snapshot(tmp_path / "input")
    capsys.readouterr()
    assert main(["report", str(target)]) == 2
    err = one_line_error(capsys)
    assert expected in err
    assert what == "damaged" or "report.json that `physiosync cv` writes" in err
    assert _snapshot(tmp_path / "input") == before  # nothing written beside it
