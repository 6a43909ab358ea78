"""The self-contained HTML report (physiosync.reporting.html)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pytest

from physiosync import __version__
from physiosync.exceptions import DataFormatError
from physiosync.reporting.html import FOOTNOTE, render_html, write_html_report

DEAP_CHANNELS = ("Fp1 AF3 F3 F7 FC5 FC1 C3 T7 CP5 CP1 P3 P7 PO3 O1 Oz Pz "
                 "Fp2 AF4 Fz F4 F8 FC6 FC2 Cz C4 T8 CP6 CP2 P4 P8 PO4 O2").split()
FIGURE_IDS = ("fig-per-subject", "fig-confusion", "fig-curves", "fig-topomap",
              "fig-comparisons")
WARNING_TEXT = "LEAKAGE WARNING: windows of one trial sit in training and test data."
METRICS = ("accuracy", "balanced_accuracy", "f1", "macro_f1", "roc_auc")
MIN_P_WARNING = "with n = 3 subjects the smallest two-sided p-value this design can reach is 0.25"


def _metrics(rng) -> dict:
    return {m: float(rng.uniform(0.4, 0.8)) for m in METRICS}


def _chance(accuracy=0.5) -> dict:
    return {m: (accuracy if m == "accuracy" else 0.5) for m in METRICS}


def _pipeline(rng, *, deep: bool, subjects=(1, 2, 3), n_classes: int = 2) -> dict:
    folds = []
    for f in range(2):
        units = [[s, t] for s in subjects for t in range(4)]
        folds.append({"fold": f, "train": units[:8], "val": units[8:10], "test": units[10:],
                      "metrics": {"subject": _metrics(rng), "window": _metrics(rng),
                                  "trial": _metrics(rng)},
                      "chance": {"subject": _chance(), "window": _chance(0.625),
                                 "trial": _chance(0.625)},
                      "chance_source": "training labels", "one_class_windows": 0})
    per_subject = {s: {**_metrics(rng), "chance": _chance(0.5 + 0.05 * i)}
                   for i, s in enumerate(subjects)}
    summary = {f"{level}.{m}": {"mean": float(rng.uniform(0.4, 0.8)),
                                "std": float(rng.uniform(0, 0.1)), "n": 2,
                                "chance": 0.5}
               for level in ("subject", "window", "trial") for m in METRICS}
    confusion = {"window": rng.integers(0, 30, (n_classes, n_classes)).tolist(),
                 "trial": rng.integers(0, 5, (n_classes, n_classes)).tolist()}
    head = summary["subject.balanced_accuracy"]
    pipe = {"headline": {"metric": "subject.balanced_accuracy", "mean": head["mean"],
                         "std": head["std"], "n": 3, "chance": 0.5, "p_value": None},
            "folds": folds, "per_subject": per_subject, "summary": summary,
            "one_class": {"windows": 0, "of_windows": 12, "units": 0, "subjects": [],
                          "folds": [], "summary_without": None},
            "confusion": confusion}
    if deep:
        steps = list(range(0, 50, 5))
        pipe["curves"] = {
            "pretrain": {kind: [{"fold": f, "step": steps,
                                 "loss": (3.0 - 0.2 * np.arange(10) + f + k).tolist()}
                                for f in range(2)] for k, kind in enumerate(("long", "short"))},
            "finetune": [{"fold": f, "subject": s, "epoch": [0, 1, 2],
                          "train_loss": [0.7, 0.6, 0.5],
                          "val_loss": [0.72, None, float("nan")] if s == 2 else [0.7, 0.68, 0.69]}
                         for f in range(2) for s in subjects],
        }
        pipe["channel_importance"] = {"channels": DEAP_CHANNELS,
                                      "values": rng.uniform(0, 1, 32).tolist(),
                                      "method": "mean |gradient x input|"}
    else:
        pipe["curves"] = {}
        pipe["channel_importance"] = {"channels": DEAP_CHANNELS,
                                      "values": rng.normal(0, 1, 32).tolist(),
                                      "method": "sum |logistic coefficient|"}
    return pipe


def _make_report(*, leaky: bool = False, n_classes: int = 2) -> dict:
    rng = np.random.default_rng(0)
    pipes = {"physiosync": _pipeline(rng, deep=True, n_classes=n_classes),
             "bandpower": _pipeline(rng, deep=False, n_classes=n_classes)}
    primary = pipes["physiosync"]
    return {
        "protocol": "legacy-segment" if leaky else "within-trial-kfold",
        "target": "valence", "leaky": leaky, "warning": WARNING_TEXT if leaky else None,
        "n_classes": n_classes,
        "class_names": ["low", "high"] if n_classes == 2 else ["LVLA", "LVHA", "HVLA", "HVHA"],
        "primary": "physiosync",
        "config": {"dataset": {"name": "deap", "root": "/data/DEAP <raw>"},
                   "cv": {"protocol": "within-trial-kfold", "n_folds": 2},
                   "model": {"d_model": 64, "lengths": [1.0, 5.0]}},
        "folds": primary["folds"], "per_subject": primary["per_subject"],
        "summary": primary["summary"], "pipelines": pipes,
        "per_subject_models": True, "headline": primary["headline"], "caveat": None,
        "comparisons": [{"pipeline": "physiosync", "baseline": "bandpower",
                         "metric": "subject.balanced_accuracy", "level": "subject",
                         "differences": {1: 0.05, 2: -0.02, 3: 0.04}, "mean": 0.0233,
                         "std": 0.0379, "n": 3, "ci95": [-0.02, 0.05], "cohens_dz": 0.62,
                         "p_value": 0.5, "min_p": 0.25,
                         "test": "two-sided sign-flip permutation test",
                         "corrected_t": None, "warning": MIN_P_WARNING}],
    }


def _legacy(rep: dict) -> dict:
    """*rep* as reports were written before per-metric chance levels and headlines."""
    for pipe in rep["pipelines"].values():
        pipe.pop("headline")
        pipe.pop("one_class")
        for fold in pipe["folds"]:
            for key in ("chance_source", "one_class_windows"):
                fold.pop(key)
            fold["metrics"].pop("subject")
            fold["chance"] = {"window": 0.625, "trial": 0.625}
        for entry in pipe["per_subject"].values():
            entry["chance"] = 0.75
        pipe["summary"] = {k: {kk: vv for kk, vv in v.items() if kk != "chance"}
                           for k, v in pipe["summary"].items()}
        pipe["summary"]["window.chance"] = {"mean": 0.625, "std": 0.0, "n": 2}
    for key in ("headline", "per_subject_models", "caveat"):
        rep.pop(key)
    rep["comparisons"] = [{"pipeline": "physiosync", "baseline": "bandpower",
                           "metric": "balanced_accuracy", "level": "subject",
                           "differences": {"1": 0.05}, "mean": 0.05, "std": 0.0, "n": 1,
                           "p_value": None, "test": "wilcoxon signed-rank"}]
    return rep


def _slim(rep: dict) -> dict:
    """``rep`` without the figure data: renders in a blink (tables only)."""
    for pipe in rep["pipelines"].values():
        for key in ("per_subject", "confusion", "curves", "channel_importance"):
            pipe.pop(key, None)
    rep["comparisons"] = []
    return rep


@pytest.fixture(scope="module")
def report():
    return _make_report()


@pytest.fixture(scope="module")
def html_page(report, tmp_path_factory):
    """The page of the full report after a JSON round trip (string subject keys), written
    into a folder that does not exist yet. (The dict form is rendered in test_four_classes.)"""
    rep = json.loads(json.dumps(report))
    return write_html_report(rep, tmp_path_factory.mktemp("html") / "sub" / "report.html")


def _figure_pngs(page: str) -> dict:
    out = {}
    for fig_id, src in re.findall(r'<figure id="([^"]+)"><img src="([^"]+)"', page):
        assert src.startswith("data:image/png;base64,")
        out[fig_id] = base64.b64decode(src.split(",", 1)[1], validate=True)
    return out


def _figure_ids(page: str) -> set:
    return set(re.findall(r'<figure id="([^"]+)"', page))


def test_writes_self_contained_page(html_page):
    assert html_page.is_file() and html_page.name == "report.html"
    assert not [p for p in html_page.parent.iterdir() if p != html_page]  # no temp files
    page = html_page.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "<script" not in page and "<link" not in page
    assert "physiosync cross-validation: valence (within-trial-kfold)" in page
    assert f"physiosync {__version__}" in page
    assert "data: deap at /data/DEAP &lt;raw&gt;" in page  # escaped
    assert FOOTNOTE in page


def test_five_figures_embedded_as_png(html_page):
    page = html_page.read_text(encoding="utf-8")
    pngs = _figure_pngs(page)
    assert set(pngs) == set(FIGURE_IDS)
    for data in pngs.values():
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    for fig_id in FIGURE_IDS:
        block = page[page.index(f'<figure id="{fig_id}">'):]
        block = block[:block.index("</figure>")]
        assert re.search(r'alt="[^"]+"', block) and "<figcaption>" in block
    assert plt.get_fignums() == []


def test_sections_in_order(html_page):
    page = html_page.read_text(encoding="utf-8")
    order = ["<h1>", "sec-summary", "fig-per-subject", "fig-confusion", "fig-curves",
             "fig-topomap", "sec-comparisons", "fig-comparisons", "sec-folds",
             "<details>", "<footer>"]
    positions = [page.index(marker) for marker in order]
    assert positions == sorted(positions)


def test_tables(html_page):
    page = html_page.read_text(encoding="utf-8")
    summary = page[page.index('id="sec-summary"'):page.index('id="sec-per-subject"')]
    assert summary.count('<table class="summary">') == 2
    assert "physiosync (primary)" in summary and "window.balanced_accuracy" in summary
    # label, key, mean ± std, chance, n; the per-subject headline leads, pooled metrics follow
    assert re.search(r"<td>pooled window balanced accuracy</td><td>window.balanced_accuracy"
                     r"</td><td>\d\.\d{3} ± \d\.\d{3}</td><td>0\.500</td><td>2 folds</td>",
                     summary)
    assert summary.index("subject.balanced_accuracy") < summary.index("window.accuracy")
    comparisons = page[page.index('id="sec-comparisons"'):page.index('id="sec-folds"')]
    assert "physiosync − bandpower" in comparisons and "sign-flip permutation" in comparisons
    assert "<td>0.023 [-0.020, 0.050]</td><td>0.038</td><td>0.62</td><td>0.5 (sign-flip)</td>" \
           "<td>0.5</td><td>0.5</td><td>0.25</td>" in comparisons  # Holm p of a family of 1
    assert MIN_P_WARNING in comparisons and "paired by subject" in comparisons
    folds = page[page.index('id="sec-folds"'):page.index("<details>")]
    # fold 0: 8 train, 2 val, 2 test units; per-subject and pooled window balanced accuracy
    # with chance 0.5, pooled trial accuracy with its chance 0.625, no one-class windows
    assert re.search(r"<tr><td>0</td><td>8</td><td>2</td><td>2</td>"
                     r"<td>\d\.\d{3}</td><td>0\.500</td><td>\d\.\d{3}</td><td>0\.500</td>"
                     r"<td>\d\.\d{3}</td><td>0\.625</td><td>0</td></tr>", folds)
    config = page[page.index("<details>"):page.index("</details>")]
    assert "n_folds: 2" in config and "d_model: 64" in config


def test_leakage_warning_at_top():
    page = render_html(_slim(_make_report(leaky=True)))
    box = page.index('<div class="warning"')
    assert WARNING_TEXT in page[box:box + 500]
    # directly after the title, before the metadata and every section
    assert page.index("</h1>") < box < page.index('class="meta"') < page.index("<section")
    clean = render_html(_slim(_make_report(leaky=False)))
    assert 'class="warning"' not in clean and "LEAKAGE" not in clean


def test_leaky_without_warning_text_still_warns():
    rep = _slim(_make_report(leaky=True))
    rep["warning"] = None
    assert 'class="warning"' in render_html(rep)


def test_sections_skipped_without_optional_parts(tmp_path):
    rep = _make_report()
    for pipe in rep["pipelines"].values():
        del pipe["curves"], pipe["channel_importance"], pipe["confusion"]
    rep["pipelines"]["bandpower"]["curves"] = {}
    del rep["comparisons"]
    page = write_html_report(rep, tmp_path / "r.html").read_text(encoding="utf-8")
    assert _figure_ids(page) == {"fig-per-subject"}
    assert "No pipeline recorded training curves" in page
    assert "No pipeline reports EEG channel importance" in page
    assert "No confusion matrices" in page
    assert "No paired comparisons" in page
    assert 'id="sec-folds"' in page and plt.get_fignums() == []


def test_baselines_only_skip_curves():
    rep = _make_report()
    del rep["pipelines"]["physiosync"]
    rep["primary"] = "bandpower"
    rep["comparisons"] = []
    page = render_html(rep)
    assert _figure_ids(page) == {"fig-per-subject", "fig-confusion", "fig-topomap"}
    assert "No pipeline recorded training curves" in page
    assert "Folds of bandpower" in page


def test_nan_and_none_render_as_na():
    rep = json.loads(json.dumps(_make_report()))  # NaN survives as float("nan")
    pipe = rep["pipelines"]["physiosync"]
    pipe["summary"]["window.roc_auc"] = {"mean": float("nan"), "std": float("nan"), "n": 0}
    pipe["summary"]["trial.roc_auc"] = {"mean": 0.61, "std": None, "n": 1}
    pipe["folds"][1]["metrics"]["window"]["balanced_accuracy"] = float("nan")
    pipe["folds"][1]["chance"]["window"] = None
    pipe["per_subject"]["2"]["balanced_accuracy"] = float("nan")
    rep["comparisons"][0]["p_value"] = None
    page = render_html(rep)
    assert "<td>window.roc_auc</td><td>n/a</td><td>n/a</td><td>0 folds</td>" in page
    assert "<td>trial.roc_auc</td><td>0.610 ± n/a</td><td>n/a</td><td>1 fold</td>" in page
    folds = page[page.index('id="sec-folds"'):page.index("<details>")]
    assert re.search(r"<tr><td>1</td>(<td>\d+</td>){3}<td>\d\.\d{3}</td><td>0\.500</td>"
                     r"<td>n/a</td><td>n/a</td>", folds)
    comparisons = page[page.index('id="sec-comparisons"'):page.index('id="sec-folds"')]
    assert "<td>0.62</td><td>n/a (sign-flip)</td><td>n/a</td><td>n/a</td><td>0.25</td>" \
        "<td>n/a</td>" in comparisons
    assert set(_figure_pngs(page)) == set(FIGURE_IDS)
    assert not re.search(r"\bnan\b", re.sub(r'src="[^"]+"', "", page), re.IGNORECASE)


def test_header_shows_caveat_headline_nulls_and_one_class_fallbacks():
    rep = _make_report()
    rep["caveat"] = "CAVEAT: the test subject's stimuli are in training."
    pipe = rep["pipelines"]["physiosync"]
    pipe["headline"].update(mean=0.612, std=0.08, n=3)
    pipe["p_value"] = {"metric": "subject.balanced_accuracy", "value": 0.612, "p_value": 0.012,
                       "permutations": 1000, "null_mean": 0.5, "null_q95": 0.58,
                       "null": "labels shuffled within each subject"}
    pipe["refit_null"] = {"metric": "subject.balanced_accuracy", "observed": 0.612,
                          "null": [0.5, 0.52, None], "p_value": 0.25, "n": 3,
                          "definition": "the pipeline retrained on permuted training labels"}
    pipe["one_class"] = {"windows": 6, "of_windows": 12, "units": 2, "subjects": [2],
                         "folds": [0], "summary_without": {"subject.balanced_accuracy": {
                             "mean": 0.7, "std": 0.1, "n": 2, "chance": 0.5}}}
    page = render_html(rep)
    caveat, head = page.index('<div class="caveat"'), page.index('<div class="headline"')
    assert page.index("</h1>") < caveat < page.index('class="meta"') < head < \
        page.index("<section")
    assert "the test subject&#x27;s stimuli" in page[caveat:head]
    box = page[head:page.index("<section")]
    assert ("per-subject balanced accuracy 0.612 ± 0.080 over 3 subjects (chance 0.500); "
            "within-subject permutation p = 0.012 (1000 permutations); refit null p = 0.25 "
            "(3 refits on permuted training labels)") in box
    assert "labels shuffled within each subject" in box and "retrained on permuted" in box
    assert "6 of 12 test windows (2 units; 1 subject; fold 0)" in box
    assert "without them: per-subject balanced accuracy 0.700 ± 0.100 over 2 subjects" in box
    summary = page[page.index('id="sec-summary"'):page.index('id="sec-per-subject"')]
    assert "<td>refit null p (3 refits, observed 0.612)</td>" in summary
    assert "<td>0.012</td><td>null mean 0.500</td>" in summary
    assert "fig-per-subject" in _figure_ids(page)  # hatched bars for subject 2
    assert plt.get_fignums() == []


def test_reports_written_before_per_metric_chance_still_render():
    page = render_html(json.loads(json.dumps(_legacy(_make_report()))))
    assert set(_figure_pngs(page)) == set(FIGURE_IDS)
    folds = page[page.index('id="sec-folds"'):page.index("<details>")]
    # The old single chance (test majority) belongs to accuracy: shown beside the trial
    # accuracy, never beside a balanced accuracy.
    assert re.search(r"<tr><td>0</td>(<td>\d+</td>){3}<td>n/a</td><td>n/a</td>"
                     r"<td>\d\.\d{3}</td><td>n/a</td><td>\d\.\d{3}</td><td>0\.625</td>"
                     r"<td>n/a</td></tr>", folds)
    assert "<td>window.chance</td>" in page and 'class="headline"' in page
    assert "wilcoxon signed-rank" in page


def test_four_classes():
    rep = _make_report(n_classes=4)  # the dict itself: integer subject keys
    page = render_html(rep)
    assert set(_figure_pngs(page)) == set(FIGURE_IDS)
    assert plt.get_fignums() == []


def test_few_positioned_channels_fall_back_to_bars():
    full = _make_report()
    rep = _slim(_make_report())
    rep["pipelines"]["physiosync"]["channel_importance"] = importance = \
        full["pipelines"]["physiosync"]["channel_importance"]
    importance["values"][0] = None  # a missing value drops that channel
    rep["pipelines"]["bandpower"]["channel_importance"] = {
        "channels": ["Cz", "EXG1", "EXG2"], "values": [0.3, 0.2, 0.1], "method": "coef"}
    pngs = _figure_pngs(render_html(rep))
    assert set(pngs) == {"fig-topomap"} and pngs["fig-topomap"].startswith(b"\x89PNG")


def test_html_escaping():
    rep = _slim(_make_report())
    rep["target"] = "<b>valence</b>"
    rep["pipelines"]["a&b <x>"] = rep["pipelines"].pop("bandpower")
    page = render_html(rep)
    assert "<b>valence</b>" not in page and "&lt;b&gt;valence&lt;/b&gt;" in page
    assert "a&amp;b &lt;x&gt;" in page and "a&b <x>" not in page


@pytest.mark.parametrize("edit, path, expected", [
    (lambda r: r.pop("pipelines"), "pipelines", "is missing"),
    (lambda r: r["pipelines"].clear(), "pipelines", "an empty object (expected a non-empty"),
    (lambda r: r["pipelines"]["physiosync"]["headline"].update(mean="0.61"),
     "pipelines.physiosync.headline.mean", "the string '0.61' (expected a number or null)"),
    (lambda r: r["pipelines"]["bandpower"].update(confusion={"window": [[1, 2], "x"]}),
     "pipelines.bandpower.confusion.window[1]", "expected an array"),
    (lambda r: r["pipelines"]["physiosync"]["folds"][1].update(metrics=[0.5]),
     "pipelines.physiosync.folds[1].metrics", "an array of 1 (expected an object)"),
    (lambda r: r.update(comparisons={"physiosync": 1}), "comparisons", "expected an array"),
    (lambda r: r["comparisons"][0].update(ci95=[0.1]), "comparisons[0].ci95",
     "expected an array of 2"),
])
def test_a_hand_edited_report_is_refused_in_one_line_naming_the_field(edit, path, expected):
    # Damage that an earlier version rendered partially (sections skipped) is refused:
    # the renderers index a validated report (evaluation.schema.validate_report).
    rep = json.loads(json.dumps(_make_report()))
    edit(rep)
    with pytest.raises(DataFormatError) as err:
        render_html(rep)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"the report is a damaged report: {path} ")
    assert expected in msg


def test_atomic_overwrite_and_errors(tmp_path):
    path = tmp_path / "report.html"
    path.write_text("old")
    assert write_html_report(_slim(_make_report()), str(path)) == path
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    with pytest.raises(IsADirectoryError):
        write_html_report(_make_report(), tmp_path)
    with pytest.raises(TypeError):
        render_html([1, 2])


def test_import_does_not_load_matplotlib():
    code = ("import sys, physiosync.reporting.html; "
            "print('matplotlib' in sys.modules, 'mne' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


def test_render_does_not_mutate_report(report, html_page):
    assert json.dumps(report, sort_keys=True) == json.dumps(_make_report(), sort_keys=True)


def test_rendering_needs_neither_the_report_module_nor_the_dataset_readers():
    # html.py words its page with reporting.text and draws the scalp map with the
    # montage of _utils: no import cycle with report.py, no reach into the readers.
    code = ("import sys\n"
            "from physiosync.reporting.html import render_html\n"
            "ci = {'channels': ['Fp1', 'Fp2', 'Cz', 'Pz'], 'values': [1.0, 2.0, 3.0, 4.0],"
            " 'method': 'm'}\n"
            "page = render_html({'protocol': 'loso', 'target': 'valence', 'pipelines': {'p': {"
            "'headline': {'metric': None, 'mean': None, 'std': None, 'n': 0}, 'folds': [],"
            " 'summary': {}, 'channel_importance': ci}}})\n"
            "print('id=\"fig-topomap\"' in page, 'mne' in sys.modules,\n"
            "      'physiosync.reporting.report' in sys.modules,\n"
            "      any(m.startswith('physiosync.datasets') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "True", "False", "False"]


def test_report_and_html_share_their_wording():
    from physiosync.reporting import report, text

    assert FOOTNOTE.startswith(text.CHANCE_NOTE)
    assert report.CHANCE_NOTE is text.CHANCE_NOTE and report.metric_label is text.metric_label
    assert text.metric_label("window.balanced_accuracy") == "pooled window balanced accuracy"
    assert text.metric_label("subject.macro_f1") == "per-subject macro F1"
    assert text.metric_label("roc_auc") == "ROC AUC"


SUITE = ("physiosync", "bandpower", "de-lr", "de-svm", "eegnet", "shallow-fbcsp", "simclr",
         "no-pretrain", "stimulus-prior", "eeg-only")


def _suite_report(n_subjects: int = 12) -> dict:
    """A report of a ten-pipeline baseline suite with permutation p-values."""
    rng = np.random.default_rng(1)
    subjects = tuple(range(1, n_subjects + 1))
    pipes = {name: _pipeline(rng, deep=False, subjects=subjects) for name in SUITE}
    for name, pipe in pipes.items():
        pipe["p_value"] = {"metric": "subject.balanced_accuracy", "value": 0.6,
                           "p_value": 0.001 if name == "physiosync" else 0.3,
                           "permutations": 1000, "null": "labels shuffled within subjects"}
    pipes["simclr"]["one_class"] = {"windows": 4, "of_windows": 12, "units": 1,
                                    "subjects": [3], "folds": [0], "summary_without": None}
    rep = _make_report()
    rep["pipelines"] = pipes
    rep["comparisons"] = [
        {"pipeline": "physiosync", "baseline": name, "metric": "subject.balanced_accuracy",
         "level": "subject", "differences": {s: float(rng.normal(0.05, 0.05))
                                              for s in subjects},
         "mean": 0.05 + 0.01 * i, "std": 0.05, "n": n_subjects, "ci95": [0.01, 0.09 + i / 100],
         "cohens_dz": 1.0, "p_value": 0.002, "min_p": 0.0005, "test": "sign-flip",
         "corrected_t": None, "warning": None}
        for i, name in enumerate(SUITE[1:])]
    return rep


def test_suite_of_ten_pipelines_one_table_and_a_readable_dot_plot():
    rep = json.loads(json.dumps(_suite_report()))
    page = render_html(rep)
    table = page[page.index('id="sec-pipelines"'):page.index('id="sec-summary"')]
    assert table.count("<tr>") == 1 + len(SUITE)  # header + one row per pipeline
    assert ("<th>physiosync − pipeline</th><th>mean paired difference [95 % CI]</th>"
            "<th>paired p</th><th>Holm p</th>") in table
    # primary row: p, no difference; a baseline row: p, the difference of the headlines,
    # the mean paired difference with its interval and units, its p and Holm's (a report
    # without Holm p-values gets them computed: 9 tests of p = 0.002)
    assert re.search(r"<tr><td>physiosync</td><td>\d\.\d{3} ± \d\.\d{3}</td><td>3</td>"
                     r"<td>0\.500</td><td>0\.001</td><td></td><td></td><td></td><td></td>",
                     table)
    assert re.search(r"<tr><td>de-lr</td><td>\d\.\d{3} ± \d\.\d{3}</td><td>3</td>"
                     r"<td>0\.500</td><td>0\.3</td><td>-?\d\.\d{3}</td>"
                     r"<td>0\.060 \[0\.010, 0\.100\] \(12 subjects\)</td>"
                     r"<td>0\.002</td><td>0\.018</td>", table)
    assert "1000 permutations" in table
    block = page[page.index('<figure id="fig-per-subject">'):]
    block = block[:block.index("</figure>")]
    assert "Dot plot of per-subject balanced accuracy for 10 pipelines" in block
    assert all(name in block for name in SUITE) and "Hollow dots" in block
    png = _figure_pngs(page)["fig-per-subject"]
    width, height = np.frombuffer(png[16:24], dtype=">u4")  # the PNG header
    # a column per pipeline, at least 60 px wide; the figure fits a page width
    assert 60 * len(SUITE) <= width <= 1500 and height >= 400
    assert plt.get_fignums() == []


def test_suite_table_without_permutations_says_why_p_is_missing():
    rep = _slim(_suite_report(3))
    for pipe in rep["pipelines"].values():
        pipe.pop("p_value")
    page = render_html(rep)
    table = page[page.index('id="sec-pipelines"'):page.index('id="sec-summary"')]
    assert table.count("<td>—</td>") == len(SUITE)
    assert "protocol.permutations is 0" in table
    # comparisons missing from the report: the difference reads n/a, not a crash
    assert "<td>n/a</td><td>n/a</td>" in table


def test_curves_show_the_held_out_diagnostic_beside_the_training_loss(monkeypatch):
    import physiosync.reporting.html as html_report
    from physiosync.reporting.text import held_out_sentence

    drawn = []
    monkeypatch.setattr(html_report, "_png_uri", lambda fig: drawn.append(fig) or "data:,")
    held = {"cells": "the fold's validation units", "units": 16, "group_size": 2,
            "step": [0, 5, 9], "loss": [17.7, 16.0, 14.4],
            "temporal_eeg": [6.1, 5.6, 5.2], "retrieval_temporal_eeg": [0.16, 0.2, 0.29],
            "collapsed": {"loss": 9.59, "temporal_eeg": 4.80},
            "random_encoder": {"loss": 17.7, "temporal_eeg": 6.1,
                               "retrieval_temporal_eeg": 0.16},
            "chance": {"retrieval_temporal_eeg": 1 / 11}}
    pipe = {"curves": {"pretrain": {"long": [
        {"fold": 0, "step": [0, 1, 2], "loss": [12.0, 8.0, 3.0], "collapsed": 9.59,
         "held_out": held}]}}}
    page = html_report._curves_section({"physiosync": pipe})
    assert "held-out cells the encoder never trains on" in page
    axes = drawn[0].axes
    assert [ax.get_title() for ax in axes] == ["(a) pre-training, training batches",
                                               "(c) pre-training, held-out cells",
                                               "(d) held-out retrieval accuracy"]
    levels = sorted(round(float(ln.get_ydata()[0]), 2) for ln in axes[1].get_lines()
                    if len(set(ln.get_ydata())) == 1)
    assert levels == [9.59, 17.7]  # collapsed and random encoder
    text = held_out_sentence(pipe)
    assert "held-out loss 14.40 (random encoder 17.70, collapsed 9.59)" in text
    assert "retrieval temporal_eeg 0.290 (random 0.160, chance 0.091)" in text
    # a run without held-out cells says why; older fold files have no sentence
    pipe["curves"]["pretrain"]["long"][0]["held_out"] = {"cells": "no held-out cells: x"}
    assert held_out_sentence(pipe) == "no held-out diagnostic: no held-out cells: x."
    assert "no held-out cells: x" in html_report._curves_section({"physiosync": pipe})
    del pipe["curves"]["pretrain"]["long"][0]["held_out"]
    assert held_out_sentence(pipe) is None


def test_figure_functions_take_values_and_return_figures_without_pyplot(tmp_path):
    # reporting.figures: data in, a Figure out; no report, no file, no pyplot
    code = ("import sys, numpy as np\n"
            "from matplotlib.figure import Figure\n"
            "from physiosync.reporting import figures as f\n"
            "v = np.array([[0.6, 0.7, np.nan], [0.5, 0.55, 0.8]])\n"
            "args = (['a', 'b'], ['1', '2', '3'], v, {'a': {'2'}, 'b': set()},"
            " {'1': 0.5, '2': 0.5}, 'balanced accuracy')\n"
            "figs = [f.per_subject_bars(*args), f.per_subject_dots(*args),\n"
            "        f.confusion_figure([('a', np.array([[3.0, 1.0], [0.0, 4.0]]))],"
            " lambda k: ['low', 'high'][:k]),\n"
            "        f.curves_figure([('a (long)', [(np.arange(3.0), np.array([3.0, 2.0, 1.5]))])],"
            " [], [2.0], []),\n"
            "        f.comparisons_figure([('a - b', np.array([0.1, -0.05, 0.2]), [-0.1, 0.3])]),\n"
            "        f.label_efficiency_figure(['2', 'all'], {'a': (np.array([0.55, 0.6]),"
            " np.array([[0.5, 0.6], [0.55, 0.65]]))}, [0.5], 'balanced accuracy')]\n"
            "print(all(isinstance(x, Figure) for x in figs), 'matplotlib.pyplot' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout.split()
    assert out == ["True", "False"]
    assert list(tmp_path.iterdir()) == []  # nothing written
