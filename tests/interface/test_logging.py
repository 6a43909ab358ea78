"""One verbosity convention: ``verbose=`` as in MNE-Python, ``set_log_level``, the CLI's -q/-v."""

import importlib
import inspect
import io
import logging
import pkgutil
import re
import warnings

import numpy as np
import pytest
from sklearn.base import clone

import physiosync
from physiosync import _logging, cli
from physiosync._logging import (log_to_file, logger, progress, progress_bars, use_log_level,
                                 verbose)
from physiosync.estimators import PhysioSyncClassifier
from physiosync.evaluation import runner as cv
from physiosync.evaluation.protocols import Fold
from physiosync.training.sampling import SlotData


class Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def _package_level_warning():
    """Each test starts at the package default and must leave the logger as it found it."""
    level, handlers = logger.level, list(logger.handlers)
    logger.setLevel(logging.WARNING)
    yield
    state = (logger.level, list(logger.handlers), _logging._console_level, _logging._bars)
    logger.setLevel(level)
    assert state == (logging.WARNING, handlers, None, None), "a test leaked logging state"


@verbose
def _logs(message="inside", *, verbose=None, then=None):
    """A public-style function: it logs at INFO, reports its level and may call *then*."""
    logger.info(message)
    seen = [logger.getEffectiveLevel()]
    if then is not None:
        seen += then()
    seen.append(logger.getEffectiveLevel())
    return seen


def _messages(caplog, level=logging.INFO):
    return [r.getMessage() for r in caplog.records if r.levelno == level]


# ---- the decorator and use_log_level ---------------------------------------------------------
@pytest.mark.parametrize("value, level", [(True, logging.INFO), (False, logging.WARNING),
                                          ("info", logging.INFO), ("DEBUG", logging.DEBUG),
                                          ("error", logging.ERROR), (15, 15)])
def test_verbose_sets_the_level_for_the_call_only(value, level, caplog):
    assert _logs(verbose=value) == [level, level]
    assert logger.level == logging.WARNING
    assert ("inside" in _messages(caplog)) == (level <= logging.INFO)


def test_verbose_none_follows_the_package_level(caplog):
    assert _logs() == [logging.WARNING] * 2 and not _messages(caplog)
    physiosync.set_log_level("info")
    try:
        assert _logs() == [logging.INFO] * 2 and _messages(caplog) == ["inside"]
    finally:
        logger.removeHandler(_logging._console_handler())
        logger.setLevel(logging.WARNING)


def test_the_level_is_restored_after_an_exception():
    def boom():
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        _logs(verbose="debug", then=boom)
    assert logger.level == logging.WARNING
    with pytest.raises(RuntimeError), use_log_level(True):
        boom()
    assert logger.level == logging.WARNING


def test_nested_calls_inherit_the_callers_level_unless_they_set_their_own(caplog):
    inner = _logs(verbose=True, then=lambda: _logs("nested"))
    assert inner == [logging.INFO] * 4
    assert _messages(caplog) == ["inside", "nested"]
    caplog.clear()
    quiet_inside = _logs(verbose=True, then=lambda: _logs("hushed", verbose=False))
    assert quiet_inside == [logging.INFO, logging.WARNING, logging.WARNING, logging.INFO]
    assert _messages(caplog) == ["inside"]


@pytest.mark.parametrize("bad, error, match", [
    ("loud", ValueError, r"Unknown log level 'loud'; expected one of \['critical', 'debug'"),
    (1.5, TypeError, "verbose must be a bool, a level name such as 'info', an int or None, "
                     "got float 1.5"),
])
def test_a_bad_verbose_names_the_value(bad, error, match):
    with pytest.raises(error, match=match):
        _logs(verbose=bad)
    with pytest.raises(error, match=match):
        physiosync.set_log_level(bad)
    assert logger.level == logging.WARNING


def test_the_decorator_refuses_a_function_without_verbose():
    with pytest.raises(TypeError, match="takes no verbose argument"):
        verbose(lambda x: x)


def test_records_reach_stderr_when_nothing_else_shows_them(monkeypatch, capsys):
    """A script that configured no logging still sees what ``verbose=True`` asks for."""
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    _logs("for the console", verbose=True)
    _logs("not shown")
    assert capsys.readouterr().err == "INFO [physiosync] for the console\n"


def test_the_console_follows_verbose_inside_a_log_file(tmp_path, caplog):
    """run.log keeps INFO whatever the call's level; the console shows what verbose asks."""
    path = tmp_path / "run.log"
    with log_to_file(path):
        _logs("quiet call", verbose=False)
        _logs("loud call", verbose=True)
        logger.info("default")
    assert _messages(caplog) == ["loud call"]
    text = path.read_text()
    assert "INFO quiet call" in text and "INFO loud call" in text and "INFO default" in text


# ---- progress bars ----------------------------------------------------------------------------
def test_progress_bars_follow_the_level_in_force(monkeypatch):
    monkeypatch.setattr("sys.stderr", Tty())
    assert progress(range(2), desc="x").disable
    with use_log_level("info"):
        assert not progress(range(2), desc="x").disable
        with progress_bars(False):
            assert progress(range(2), desc="x").disable
    with progress_bars(True):
        assert not progress(range(2), desc="x").disable
        with use_log_level(False):  # an explicit level decides the bars of its block
            assert progress(range(2), desc="x").disable
    monkeypatch.setattr("sys.stderr", io.StringIO())
    with use_log_level("debug"), progress_bars(True):
        assert progress(range(2), desc="x").disable  # never off a terminal


# ---- public functions ------------------------------------------------------------------------
def _tiny_cv(tmp_path, runner, **kwargs):
    x = {"eeg": np.zeros((2, 2, 1, 1, 4), dtype=np.float32)}
    data = SlotData(x, np.ones((2, 2, 1), dtype=bool), [1, 2], [0, 1],
                    labels=np.array([[0, 1], [1, 0]]))
    fold = Fold(0, np.array([[1, 0], [1, 1]]), np.empty((0, 2), int), np.array([[2, 0], [2, 1]]),
                np.array([[1, 0], [1, 1]]))
    return cv.cross_validate(data, [fold], tmp_path, runner=runner, **kwargs)


def _recording_runner(seen):
    def runner(data, fold, **kwargs):
        seen.append((logger.getEffectiveLevel(),
                     progress(range(1), desc="inner").disable, sorted(kwargs)))
        raise KeyboardInterrupt  # stop before writing a fold: the state is what matters

    return runner


def test_cross_validate_runs_its_runner_at_its_level(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.stderr", Tty())
    seen = []
    for value in (None, True, False):
        with pytest.raises(KeyboardInterrupt):
            _tiny_cv(tmp_path, _recording_runner(seen), verbose=value)
    assert seen == [(logging.WARNING, True, []), (logging.INFO, False, []),
                    (logging.WARNING, True, [])]


@pytest.mark.parametrize("show, hidden", [(True, False), (False, True), (None, True)])
def test_show_progress_still_works_with_a_future_warning(tmp_path, monkeypatch, show, hidden):
    monkeypatch.setattr("sys.stderr", Tty())
    seen = []
    with pytest.warns(FutureWarning, match=r"cross_validate\(show_progress=\.\.\.\) is "
                                           r"deprecated .* use verbose= instead") as record:
        with pytest.raises(KeyboardInterrupt):
            _tiny_cv(tmp_path, _recording_runner(seen), show_progress=show)
    assert record[0].filename == __file__  # points at the caller, not at physiosync
    # The bars change as before; the level does not; show_progress is not passed on.
    assert seen == [(logging.WARNING, hidden, [])]


def test_show_progress_warning_points_past_the_decorators(strong_deap_slots, monkeypatch):
    """pretrain is wrapped by flush_denormals (contextlib) too: the warning still names the
    caller's line, and the bar it asked for is shown for the call."""
    from physiosync.params import PretrainConfig
    from physiosync.training import pretrain as pre_mod

    shown, real = [], pre_mod.progress

    def spy(*args, **kwargs):
        bar = real(*args, **kwargs)
        shown.append(not bar.disable)
        return bar

    monkeypatch.setattr(pre_mod, "progress", spy)
    monkeypatch.setattr("sys.stderr", Tty())
    cfg = PretrainConfig(embed_dim=16, depth=1, n_heads=2, n_prompts=1, projector_dims=(32, 32),
                         cmca_dim=16, batch_slots=4, group_size=2, steps=1, seed=0)
    with pytest.warns(FutureWarning, match=r"pretrain\(show_progress=\.\.\.\)") as record:
        pre_mod.pretrain(strong_deap_slots, cfg, n_sub=5, device="cpu", show_progress=True)
    assert record[0].filename == __file__
    assert shown == [True]


def test_functions_that_took_show_progress_take_verbose():
    import inspect

    from physiosync.experiment import run_experiment
    from physiosync.training.finetune import finetune
    from physiosync.training.pretrain import pretrain, pretrain_encoders

    for function in (run_experiment, cv.cross_validate, cv.run_fold, cv.run_fold_with,
                     pretrain, pretrain_encoders, finetune):
        params = inspect.signature(function).parameters
        assert params["verbose"].default is None, function.__name__
        assert params["verbose"].kind is inspect.Parameter.KEYWORD_ONLY, function.__name__
        assert "show_progress" not in params, function.__name__


def test_the_estimator_clones_with_verbose_and_fits_at_that_level(monkeypatch, caplog):
    import torch

    import physiosync.evaluation.fit as fit  # the one fit path the estimator trains through

    clf = PhysioSyncClassifier(verbose="info", pretrain=False)
    assert clone(clf).get_params()["verbose"] == "info"
    assert PhysioSyncClassifier().get_params()["verbose"] is None
    levels = []

    def fake_finetune(*args, **kwargs):
        levels.append(logger.getEffectiveLevel())
        return torch.nn.Linear(1, 1), []

    monkeypatch.setattr(fit, "finetune", fake_finetune)
    X = np.random.default_rng(0).normal(size=(8, 2, 10)).astype(np.float32)
    y = np.array([0, 1] * 4)
    for value in ("info", None, False):
        clone(clf).set_params(verbose=value).fit(X, y, subject=[1] * 8, trial=[0, 1] * 4)
    assert levels == [logging.INFO, logging.WARNING, logging.WARNING]
    assert _messages(caplog) == [  # at "info" only
        "too few training trials for a validation split; keeping the last epoch",
        "fine-tuning: 6 epochs on 8 windows"]
    assert logger.level == logging.WARNING


#: Public names whose source logs but that take no ``verbose``, with the reason.
NO_VERBOSE = {
    "physiosync._logging.set_log_level": "sets the package level itself",
    "physiosync._logging.use_log_level": "sets the level of a block itself",
    "physiosync.runfolder.FolderLock.release": "a clean-up that never raises: its one "
                                               "warning names a lock it could not remove",
}
_LOGS = re.compile(r"logger\.|(?<![\w.])progress\(")


def _public_api():
    """``(qualified name, object)`` for every name in ``__all__`` of physiosync and of its
    public modules (no part of the module path starts with ``_``), each object once."""
    modules = [physiosync] + [
        importlib.import_module(m.name)
        for m in pkgutil.walk_packages(physiosync.__path__, "physiosync.")
        if not any(part.startswith("_") for part in m.name.split("."))]
    seen = {}
    for module in modules:
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                seen.setdefault(id(obj), (f"{obj.__module__}.{obj.__qualname__}", obj))
    return list(seen.values())


def _logs_in(function) -> bool:
    try:
        return bool(_LOGS.search(inspect.getsource(function)))
    except (OSError, TypeError):  # no Python source (a builtin, a C extension)
        return False


_VERBOSE_WRAPPER = verbose(lambda *, verbose=None: None).__code__


def _wrapped_by_verbose(function) -> bool:
    """Whether :func:`physiosync._logging.verbose` is one of *function*'s decorators."""
    while function is not None:
        if getattr(function, "__code__", None) is _VERBOSE_WRAPPER:
            return True
        function = getattr(function, "__wrapped__", None)
    return False


def _takes_verbose_through_the_decorator(function, signature=None) -> bool:
    """Keyword-only ``verbose=None``, applied by :func:`physiosync._logging.verbose`."""
    param = (signature or inspect.signature(function)).parameters.get("verbose")
    return (param is not None and param.default is None
            and param.kind is inspect.Parameter.KEYWORD_ONLY and _wrapped_by_verbose(function))


def test_every_public_function_that_logs_takes_verbose():
    """MNE's convention, enforced: a public function, estimator or reader method whose own
    code logs or shows a progress bar takes ``verbose=None`` through the decorator."""
    offenders, checked, exempt = [], set(), set()
    for qualname, obj in _public_api():
        if inspect.isfunction(obj):
            members = [(qualname, obj, None)] if _logs_in(obj) else []
        elif hasattr(obj, "fit"):  # an estimator: verbose is a constructor parameter
            if _logs_in(obj):
                param = inspect.signature(obj).parameters.get("verbose")
                if param is None or param.default is not None or \
                        not _wrapped_by_verbose(obj.fit):
                    offenders.append(f"{qualname} (verbose=None in __init__, @verbose fit)")
                checked.add(qualname)
            continue
        else:  # a class: every method of its own that logs, the constructor included
            members = [(f"{qualname}.{name}", member,
                        inspect.signature(obj) if name == "__init__" else None)
                       for name, member in vars(obj).items()
                       if inspect.isfunction(member) and _logs_in(member)
                       and (name == "__init__" or not name.startswith("_"))]
        for name, function, signature in members:
            if name in NO_VERBOSE:
                exempt.add(name)
            elif not _takes_verbose_through_the_decorator(function, signature):
                offenders.append(name)
            checked.add(name)
    assert not offenders, f"log or show progress but take no verbose=None: {offenders}"
    assert exempt == set(NO_VERBOSE), "an exemption is no longer needed; remove it"
    # The walk reaches every layer (a broken walk would pass vacuously).
    assert {"physiosync.preprocessing.cache.prepare", "physiosync.synthetic.deap.make_deap",
            "physiosync.datasets.deap.DEAP.__init__",
            "physiosync.estimators.PhysioSyncClassifier",
            "physiosync.training.pretrain.pretrain"} <= checked


def test_writers_and_readers_log_at_the_level_of_the_call(tmp_path, caplog):
    from physiosync.datasets import DEAP, DREAMER
    from physiosync.preprocessing.cache import prepare
    from physiosync.synthetic import make_deap, make_deap_bdf, make_dreamer

    sizes = dict(n_subjects=1, n_trials=2, seconds=4.0)
    make_deap(tmp_path / "dat", **sizes)
    assert not _messages(caplog)  # None follows the package level: warnings only
    make_deap(tmp_path / "dat", **sizes, verbose=True)
    make_dreamer(tmp_path / "mat", **sizes, verbose="info")
    make_deap_bdf(tmp_path / "bdf", **sizes, verbose=True)
    assert [m.split(" to ")[0] for m in _messages(caplog)] == [
        "wrote 1 synthetic DEAP subjects", "wrote synthetic DREAMER (1 subjects x 2 clips)",
        "wrote 1 synthetic DEAP BDF subjects [1]"]
    caplog.clear()
    deap = DEAP(tmp_path / "dat")
    DREAMER(tmp_path / "mat")
    bdf = DEAP(tmp_path / "bdf", format="bdf", verbose=False)
    bdf.load_subject(1)
    assert not _messages(caplog)
    DEAP(tmp_path / "dat", verbose=True)
    DREAMER(tmp_path / "mat", verbose=True)
    bdf.load_subject(1, verbose=True)
    prepare(deap, cache_dir=tmp_path / "cache", verbose=True)
    prepare(deap, cache_dir=tmp_path / "cache")
    said = _messages(caplog)
    assert said[0].startswith("DEAP (dat) at ") and said[1].startswith("DREAMER at ")
    assert any(m.startswith("s01.bdf: 2 trials, markers on") for m in said[2:-1])
    assert said[-1].startswith("prepared DEAP subject 1 -> ")  # the second call: quiet
    assert logger.level == logging.WARNING


# ---- the command line ------------------------------------------------------------------------
def _cli_state(monkeypatch, argv):
    """The level and progress-bar visibility that the command of *argv* runs under."""
    seen = {}

    def command(args):
        seen["level"] = _logging._verbosity()
        seen["bars"] = not progress(range(1), desc="x").disable
        return 0

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    for sub in parser._subparsers._group_actions[0].choices.values():
        sub.set_defaults(func=command)
    monkeypatch.setattr("sys.stderr", Tty())
    assert cli.main(argv) == 0
    assert logger.level == logging.WARNING  # restored after the command
    return seen["level"], seen["bars"]


@pytest.mark.parametrize("argv, level, bars", [
    (["cv", "--out", "x"], logging.WARNING, True),  # default: bars, no INFO records
    (["cv", "--out", "x", "-q"], logging.WARNING, False),  # -q is verbose=False
    (["cv", "--out", "x", "-v"], logging.INFO, True),  # -v is verbose="info"
    (["-v", "cv", "--out", "x", "-q"], logging.INFO, False),
    (["pretrain", "--out", "x"], logging.WARNING, True),
    (["prepare", "deap", "x"], logging.WARNING, False),  # no -q: bars follow the level
    (["prepare", "deap", "x", "-v"], logging.INFO, True),
])
def test_cli_q_and_v_set_the_level_through_verbose(monkeypatch, argv, level, bars):
    assert _cli_state(monkeypatch, argv) == (level, bars)


def test_cli_help_maps_the_flags_to_verbose():
    text = cli.build_parser()._subparsers._group_actions[0].choices["cv"].format_help()
    squashed = " ".join(text.split())
    assert "as verbose=False in the library" in squashed
    assert "as verbose='info' in the library" in squashed


def test_no_future_warning_from_internal_callers(tmp_path):
    """Nothing in physiosync passes show_progress any more."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        with pytest.raises(KeyboardInterrupt):
            _tiny_cv(tmp_path, _recording_runner([]))
