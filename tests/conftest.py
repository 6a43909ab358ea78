"""Shared fixtures: tiny synthetic datasets, built once per test session."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from physiosync.synthetic import make_deap

#: Per-test limit of ``slow`` tests (not run in CI), which may run longer than the
#: default ``timeout`` of pyproject.toml; a test's own ``timeout`` mark wins.
SLOW_TIMEOUT_S = 3600


def pytest_collection_modifyitems(config, items):
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if gpu:
        import torch  # only when a CUDA test was collected

        if not torch.cuda.is_available():
            skip = pytest.mark.skip(reason="needs CUDA (a gpu test)")
            for item in gpu:
                item.add_marker(skip)
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))
        group = _xdist_group(item)
        if group and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(group))


def _xdist_group(item) -> str | None:
    """Tests that must not run beside each other under pytest-xdist (``-n 2``, which
    runs a group on one worker): the Ray cluster's tests (``ray stop --force`` stops
    every cluster of the machine, and one test kills a Ray task worker it finds by
    name) and the torchrun tests (two processes each, and a rendezvous)."""
    if "ray_cluster" in getattr(item, "fixturenames", ()):
        return "ray"
    if getattr(getattr(item, "module", None), "__name__", "") == "test_distributed":
        return "torchrun"
    return None


def _logging_state() -> dict:
    """What a test may change about the ``physiosync`` logger and the verbosity globals."""
    from physiosync import _logging

    logger = _logging.logger
    return {"level": logger.level, "handlers": list(logger.handlers),
            "handler filters": [list(h.filters) for h in logger.handlers],
            "filters": list(logger.filters), "propagate": logger.propagate,
            "disabled": logger.disabled, "_console_level": _logging._console_level,
            "_bars": _logging._bars}


def _restore_logging_state(state: dict) -> None:
    from physiosync import _logging

    logger = _logging.logger
    for handler in [h for h in logger.handlers if h not in state["handlers"]]:
        logger.removeHandler(handler)
        handler.close()  # a StreamHandler leaves its stream open; a log file is closed
    for handler, filters in zip(state["handlers"], state["handler filters"]):
        handler.filters = list(filters)
    logger.handlers = list(state["handlers"])
    logger.filters = list(state["filters"])
    logger.setLevel(state["level"])
    logger.propagate, logger.disabled = state["propagate"], state["disabled"]
    _logging._console_level, _logging._bars = state["_console_level"], state["_bars"]


@pytest.fixture(autouse=True)
def _logging_state_unchanged():
    """Fail a test that leaves the ``physiosync`` logger changed, as MNE-Python's test suite does.

    A level, handler or filter left behind by one test changes what every later test
    logs and shows. The state is restored first, so one leak fails one test only. To
    change the verbosity in a test, use ``physiosync.use_log_level`` (or ``verbose=``),
    ``caplog.set_level`` or ``monkeypatch``, which all restore it.
    """
    before = _logging_state()
    yield
    after = _logging_state()
    if after != before:
        _restore_logging_state(before)
        changed = "; ".join(f"{key}: {before[key]!r} -> {after[key]!r}"
                            for key in before if before[key] != after[key])
        pytest.fail(f"the test left the physiosync logger changed ({changed}); use "
                    "physiosync.use_log_level, caplog.set_level or monkeypatch, which "
                    "restore it.", pytrace=False)


@pytest.fixture(autouse=True)
def _a_quiet_machine(monkeypatch):
    """The busy-machine note of training commands depends on what else runs on the
    machine: in-process tests see a quiet one (tests/orchestration/test_threads.py sets the load it
    tests, and measures the real one)."""
    from physiosync.execution import cpus  # where busy_note looks it up

    monkeypatch.setattr(cpus, "other_load", lambda interval=0.25: 0.0)


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """Each test starts with the thread count the one before it found: a test that sets
    torch's threads (``torch.set_num_threads``) does not change the numbers of the tests
    after it, whatever their order (training results depend on the thread count through
    the order of float reductions)."""
    import torch

    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def one_line_error(capsys) -> str:
    """The one line a refused command printed on stderr (checked to be exactly that: no
    traceback, no "this is a bug" line)."""
    err = capsys.readouterr().err
    assert err.startswith("physiosync: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err and "bug" not in err
    return err


def refusal_in_child(module: str, reader: str, path) -> str:
    """Run ``module.reader(path)`` in a child interpreter; return what it printed.

    For inputs that once crashed the interpreter (segfault): a crash then fails the
    calling test instead of killing pytest. The child prints ``REFUSED <message>`` when
    the reader raises :class:`~physiosync.DataFormatError`.
    """
    code = textwrap.dedent(f"""
        from physiosync import DataFormatError
        from {module} import {reader}
        try:
            {reader}({str(path)!r})
        except DataFormatError as err:
            print("REFUSED", err)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def kind_fold_kwargs(kind: str, sfreq: dict | None = None, *sets: str) -> dict:
    """``runner`` and ``model`` of a declared pipeline kind, for ``cross_validate`` on
    SlotData: *kind*'s own fold arguments under the ``tiny`` preset (with *sets*), its
    estimator reading windows sampled at *sfreq*."""
    from types import SimpleNamespace

    from physiosync.config import load_config
    from physiosync.evaluation.pipelines import PIPELINE_KINDS

    kind = PIPELINE_KINDS[kind]
    return {"runner": kind.fold_function(),
            **kind.fold_kwargs(load_config("tiny", list(sets)), SimpleNamespace(sfreq=sfreq))}


class Interrupter:
    """Wrap *func*: count its calls and raise KeyboardInterrupt on call number *at*."""

    def __init__(self, func, at=None):
        self.func, self.at, self.calls = func, at, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.func(*args, **kwargs)


@pytest.fixture
def hide_package(monkeypatch):
    """``hide_package("ray")``: make a package unimportable for the test, as if not installed."""
    import builtins
    import sys

    def hide(package: str) -> None:
        def owned(name):
            return name == package or name.startswith(package + ".")

        real_import = builtins.__import__

        def blocked(name, *args, **kwargs):
            if owned(name):
                raise ImportError(f"No module named {name!r}")
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", blocked)
        for mod in [m for m in sys.modules if owned(m)]:
            monkeypatch.delitem(sys.modules, mod)

    return hide


@pytest.fixture
def interrupter():
    """The :class:`Interrupter` class, to simulate a run killed mid-way."""
    return Interrupter


@pytest.fixture(scope="session")
def deap_dat_dir(tmp_path_factory):
    """A tiny preprocessed-DEAP folder: 3 subjects x 4 trials x 10 s, strong effect."""
    return make_deap(tmp_path_factory.mktemp("deap") / "data_preprocessed_python",
                     n_subjects=3, n_trials=4, seconds=10.0, effect=2.0, seed=1)


@pytest.fixture(scope="session")
def dreamer_mat(tmp_path_factory):
    """A tiny DREAMER.mat: 2 subjects x 3 clips of about 10 s."""
    from physiosync.synthetic import make_dreamer

    return make_dreamer(tmp_path_factory.mktemp("dreamer"), n_subjects=2, n_trials=3,
                        seconds=10.0, effect=2.0, seed=2)


@pytest.fixture(scope="session")
def strong_deap_slots(tmp_path_factory):
    """5 s windows of a strong-effect synthetic DEAP (6 subjects x 6 trials x 10 s) as
    :class:`~physiosync.training.sampling.SlotData` with valence labels."""
    from physiosync.datasets import DEAP
    from physiosync.preprocessing.cache import prepare
    from physiosync.training.sampling import SlotData
    from physiosync.preprocessing.windows import make_windows

    folder = make_deap(tmp_path_factory.mktemp("deap_strong") / "data_preprocessed_python",
                       n_subjects=6, n_trials=6, seconds=10.0, effect=3.0, seed=0)
    windows = make_windows(prepare(DEAP(folder), cache_dir=False), lengths=(5.0,))
    return SlotData.from_windows(windows, 5.0, target="valence")


@pytest.fixture(scope="session")
def study_root(tmp_path_factory):
    """A small synthetic DEAP folder for whole studies (3 subjects x 6 videos x 10 s)."""
    from physiosync.synthetic import make_deap

    return make_deap(tmp_path_factory.mktemp("study") / "d", n_subjects=3, n_trials=6,
                     seconds=10, effect=2.0, seed=4, verbose=False)
