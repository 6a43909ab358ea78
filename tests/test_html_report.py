"""The self-contained HTML report (physiosync.html_report)."""

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
from physiosync.html_report import FOOTNOTE, render_html, write_html_report

DEAP_CHANNELS = ("Fp1 AF3 F3 F7 FC5 FC1 C3 T7 CP5 CP1 P3 P7 PO3 O1 Oz Pz "
                 "Fp2 AF4 Fz F4 F8 FC6 FC2 Cz C4 T8 CP6 CP2 P4 P8 PO4 O2").split()
FIGURE_IDS = ("fig-per-subject", "fig-confusion", "fig-curves", "fig-topomap",
              "fig-comparisons")
WARNING_TEXT = "LEAKAGE WARNING: windows of one trial sit in training and test data."
METRICS = ("accuracy", "balanced_accuracy", "f1", "macro_f1", "roc_auc")


def _metrics(rng) -> dict:
    return {m: float(rng.uniform(0.4, 0.8)) for m in METRICS}


def _pipeline(rng, *, deep: bool, subjects=(1, 2, 3), n_classes: int = 2) -> dict:
    folds = []
    for f in range(2):
        units = [[s, t] for s in subjects for t in range(4)]
        folds.append({"fold": f, "train": units[:8], "val": units[8:10], "test": units[10:],
                      "metrics": {"window": _metrics(rng), "trial": _metrics(rng)},
                      "chance": {"window": 0.5, "trial": 0.5}})
    per_subject = {s: {**_metrics(rng), "chance": 0.5 + 0.05 * i}
                   for i, s in enumerate(subjects)}
    summary = {f"{level}.{m}": {"mean": float(rng.uniform(0.4, 0.8)),
                                "std": float(rng.uniform(0, 0.1)), "n": 2}
               for level in ("window", "trial", "subject") for m in METRICS}
    summary["window.chance"] = {"mean": 0.5, "std": 0.0, "n": 2}
    confusion = {"window": rng.integers(0, 30, (n_classes, n_classes)).tolist(),
                 "trial": rng.integers(0, 5, (n_classes, n_classes)).tolist()}
    pipe = {"folds": folds, "per_subject": per_subject, "summary": summary,
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
        "comparisons": [{"pipeline": "physiosync", "baseline": "bandpower",
                         "metric": "balanced_accuracy", "level": "subject",
                         "differences": {1: 0.05, 2: -0.02, 3: 0.04}, "mean": 0.0233,
                         "std": 0.0379, "n": 3, "p_value": 0.5,
                         "test": "wilcoxon signed-rank"}],
    }


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
    assert "dataset: deap" in page and "/data/DEAP &lt;raw&gt;" in page  # escaped
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
    assert re.search(r"<td>\d\.\d{3} ± \d\.\d{3}</td><td>2</td>", summary)
    comparisons = page[page.index('id="sec-comparisons"'):page.index('id="sec-folds"')]
    assert "physiosync − bandpower" in comparisons and "wilcoxon signed-rank" in comparisons
    assert "0.023 ± 0.038" in comparisons and "<td>0.5</td>" in comparisons
    folds = page[page.index('id="sec-folds"'):page.index("<details>")]
    # fold 0: 8 train, 2 val, 2 test units; window chance 0.5
    assert re.search(r"<tr><td>0</td><td>8</td><td>2</td><td>2</td>"
                     r"<td>\d\.\d{3}</td><td>\d\.\d{3}</td><td>0\.500</td></tr>", folds)
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
    assert "<td>window.roc_auc</td><td>n/a</td><td>0</td>" in page
    assert "<td>trial.roc_auc</td><td>0.610 ± n/a</td><td>1</td>" in page
    folds = page[page.index('id="sec-folds"'):page.index("<details>")]
    assert re.search(r"<tr><td>1</td>(<td>\d+</td>){3}<td>n/a</td><td>\d\.\d{3}</td>"
                     r"<td>n/a</td></tr>", folds)
    comparisons = page[page.index('id="sec-comparisons"'):page.index('id="sec-folds"')]
    assert "<td>n/a</td><td>wilcoxon signed-rank</td>" in comparisons
    assert set(_figure_pngs(page)) == set(FIGURE_IDS)
    assert not re.search(r"\bnan\b", re.sub(r'src="[^"]+"', "", page), re.IGNORECASE)


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


def test_report_without_pipelines_key():
    # The single-pipeline layout: folds / per_subject / summary at the top level only.
    rep = _make_report()
    del rep["pipelines"], rep["comparisons"]
    page = render_html(rep)
    assert "fig-per-subject" in _figure_ids(page)
    assert "physiosync (primary)" in page


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
    code = ("import sys, physiosync.html_report; "
            "print('matplotlib' in sys.modules, 'mne' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


def test_render_does_not_mutate_report(report, html_page):
    assert json.dumps(report, sort_keys=True) == json.dumps(_make_report(), sort_keys=True)
