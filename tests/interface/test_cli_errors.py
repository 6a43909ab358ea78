"""Every failure of the command line ends in one clear line, with no traceback unless -v."""

import errno
import io
import logging
import os
import re

import pytest
import yaml

import physiosync
import physiosync.evaluation.runner as cv
from physiosync import cli
from physiosync._logging import log_to_file, logger, progress
from physiosync.cli import build_parser, main
from physiosync.config import PRESETS, ConfigError, load_config


# No logger clean-up here: ``main`` restores the level and handlers itself (its ``-v``
# is ``use_log_level("info")``), and conftest's ``_logging_state_unchanged`` fails any
# test that leaves the logger changed.


def _one_error_line(capsys, *, traceback=False) -> str:
    """The stderr of the last command: one ``physiosync: error:`` line (after a traceback
    when *traceback*)."""
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines and lines[-1].startswith("physiosync: error: "), err
    if traceback:
        assert "Traceback (most recent call last)" in err
    else:
        assert len(lines) == 1 and "Traceback" not in err, err
    return lines[-1]


def _cv(root, out, *extra):
    return main(["cv", "--dataset", "deap", "--data-root", str(root), "--config", "tiny",
                 "--folds", "2", "--pipelines", "bandpower", "--out", str(out), "-q",
                 "--set", "protocol.one_class=constant",
                 "--cache-dir", str(out.parent / "cache"), *extra])


def _bomb(levels=8) -> str:
    """A YAML alias bomb under a list-valued key: 9**levels values once expanded."""
    lines = ["anchors:", "  - &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9]"]
    for i in range(1, levels):
        lines.append(f"  - &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines) + f"\nfinetune:\n  hidden: [*a{levels - 1}]\n"


# ---- configuration: every bad value is a ConfigError, one line, exit 2 --------------------
CONFIG_FILES = {
    "non-utf8": (b"seed: 1\n# caf\xe9\n", "is not UTF-8 text"),
    "deep": (b"pretrain: {projector_dims: " + b"[" * 5000 + b"]" * 5000 + b"}\n",
             "nested more than 32 levels"),
    "alias-bomb": (_bomb().encode(), "expands (aliases included) to more than"),
    "self-alias": (b"finetune:\n  hidden: &h [1, *h]\n", "refers to itself"),
    "not-yaml": (b"seed: [1, 2\n", "is not valid YAML"),
    "val_size": (b"protocol: {val_size: 0.99}\n", "'protocol.val_size' must be >= 0 and <= 0.5"),
}


@pytest.mark.parametrize("name", list(CONFIG_FILES))
def test_bad_config_files_end_in_one_line(tmp_path, capsys, name):
    text, message = CONFIG_FILES[name]
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(text)
    assert main(["cv", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    line = _one_error_line(capsys)
    assert message in line
    if name != "val_size":  # a file that cannot be read as a configuration is named
        assert str(path) in line
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.parametrize("override,message", [
    ("pretrain.loss_weights=[0.5, x, 1]", "'pretrain.loss_weights[1]' must be a number"),
    ("pretrain.loss_weights=[1, 1]", "'pretrain.loss_weights' must hold 3 elements"),
    ("finetune.hidden=[64, [8]]", "'finetune.hidden[1]' must be a single int"),
    ("finetune.hidden=[64, 0]", "'finetune.hidden[1]' must be >= 1"),
    ("pretrain.projector_dims=[16, abc]", "'pretrain.projector_dims[1]' must be an integer"),
    ("pretrain.projector_dims=[1e9]", "'pretrain.projector_dims[0]' must be <= 16384"),
    ("pretrain=1", "config section 'pretrain' must be a mapping"),
    ("seed=-1", "'seed' must be >= 0"),
    ("finetune.seed=-1", "'finetune.seed' must be >= 0"),
    ("protocol.val_size=0.99", "'protocol.val_size' must be >= 0 and <= 0.5"),
    ("protocol.permutations=1e9", "'protocol.permutations' must be <= 100000"),
    ("protocol.permutation_refit=100000", "'protocol.permutation_refit' must be <= 1000"),
    ("protocol.n_splits=1000000", "'protocol.n_splits' must be <= 1000"),
    ("pretrain.embed_dim=1000000", "'pretrain.embed_dim' must be <= 4096"),
    ("pretrain.batch_slots=100000000", "'pretrain.batch_slots' must be <= 4096"),
    ("pretrain.steps=1e12", "'pretrain.steps' must be <= 10000000"),
    ("finetune.epochs=1e9", "'finetune.epochs' must be <= 100000"),
    ("finetune.batch_size=1e9", "'finetune.batch_size' must be <= 65536"),
    ("pretrain.lr=.inf", "'pretrain.lr' must be a finite number"),
    ("baselines.bandpower=3", "'baselines.bandpower' must be a mapping"),
    ("finetune.hidden=" + "[" * 100 + "]" * 100, "nested more than 32 levels"),
    ("finetune.hidden=" + "[" * 100, "cannot parse the value; it is not valid YAML"),
])
def test_bad_overrides_end_in_one_line_and_v_adds_the_traceback(tmp_path, capsys, override,
                                                                  message):
    args = ["cv", "--config", "tiny", "--set", override, "--out", str(tmp_path / "run")]
    assert main(args) == 2
    assert message in _one_error_line(capsys)
    assert main(args + ["-v"]) == 2  # -v after the subcommand: the traceback, then the line
    assert message in _one_error_line(capsys, traceback=True)
    with pytest.raises(ConfigError, match=re.escape(message)):  # the library says the same
        load_config("tiny", [override])


def test_the_range_table_gives_every_count_and_size_an_upper_bound():
    from physiosync import params, pipeline_specs
    from physiosync._utils.checks import Interval, ListOf

    counts = ("n_sub", "n_splits", "permutations", "permutation_refit", "embed_dim", "depth",
              "n_heads", "n_prompts", "cmca_dim", "batch_slots", "group_size", "steps",
              "epochs", "checkpoint_every", "batch_size")
    sections = (params.DataConfig, params.ProtocolConfig, params.PretrainConfig,
                params.FinetuneConfig, pipeline_specs.BandPowerParams)
    constraints = [(k, c) for cls in sections for k, c in cls._parameter_constraints.items()]
    for key, c in constraints:
        if isinstance(c, Interval):
            assert c.high is not None, key
        if isinstance(c, ListOf):
            assert 0 <= c.min_len <= c.max_len <= 10_000, key
            assert not isinstance(c.elem_constraint, Interval) or \
                c.elem_constraint.high is not None, key
    assert {k for k, c in constraints if isinstance(c, Interval)} >= set(counts)
    # the presets and shipped configs still validate
    for name in PRESETS:
        load_config(name)


def test_aliases_below_the_node_bound_are_still_checked_element_by_element(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(_bomb(levels=3))
    with pytest.raises(ConfigError, match="unknown config key 'anchors'"):
        load_config(path)
    path.write_text("finetune: {hidden: &a [8]}\npretrain: {projector_dims: [*a, *a]}\n")
    with pytest.raises(ConfigError, match=r"'pretrain.projector_dims\[0\]' must be a single"):
        load_config(path)


# ---- presets, -v, progress bars -----------------------------------------------------------
def test_presets_are_not_shadowed_by_files_of_the_same_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny").mkdir()  # e.g. a run folder called tiny
    (tmp_path / "demo").write_text("finetune: {epochs: 77}\n")
    assert load_config("tiny").finetune.hidden == (8,)
    assert load_config("demo").finetune.epochs == PRESETS["demo"]["finetune"]["epochs"]
    assert load_config("./demo").finetune.epochs == 77  # ./name is the file
    with pytest.raises(ConfigError, match="neither a file nor a preset"):
        load_config("./tiny")


def test_verbose_is_accepted_before_and_after_the_subcommand():
    parser = build_parser()
    assert parser.parse_args(["-v", "report", "x"]).verbose is True
    assert parser.parse_args(["report", "x", "-v"]).verbose is True
    assert parser.parse_args(["report", "--verbose", "x"]).verbose is True
    assert parser.parse_args(["report", "x"]).verbose is False


def test_progress_bars_are_off_when_stderr_is_not_a_terminal(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert progress(range(3), desc="x", disable=False).disable
    monkeypatch.setattr("sys.stderr", Tty())
    assert not progress(range(3), desc="x", disable=False).disable


def test_log_to_file_leaves_the_console_and_the_logger_as_they_were(tmp_path, caplog):
    before = (logger.level, logger.propagate, list(logger.handlers))
    path = tmp_path / "later" / "run.log"
    with caplog.at_level(logging.WARNING, logger="physiosync"):
        level = logger.level
        with log_to_file(path):
            logger.info("before the folder exists")
            path.parent.mkdir()
            logger.info("an info line")
            logger.warning("a warning")
        assert logger.level == level
    text = path.read_text()
    assert "INFO before the folder exists" in text and "WARNING a warning" in text
    assert [r.getMessage() for r in caplog.records] == ["a warning"]  # no INFO leaked
    assert (logger.level, logger.propagate, list(logger.handlers)) == before


# ---- runs: Ctrl-C, I/O errors, bugs, run.log, absolute data.root ---------------------------
def test_ctrl_c_during_cv_says_how_far_it_got_and_that_the_command_resumes(
        deap_dat_dir, tmp_path, monkeypatch, interrupter, capsys):
    monkeypatch.setattr(cv, "run_fold_with", interrupter(cv.run_fold_with, at=2))
    out = tmp_path / "run"
    assert _cv(deap_dat_dir, out) == 130
    line = _one_error_line(capsys)
    assert "interrupted: 1 of 2 (pipeline, fold) units done" in line and "resume" in line
    assert not list(out.rglob(".physiosync-tmp-*"))


def _every_command_raises(monkeypatch, error):
    """Make every subcommand of :func:`main` raise *error*."""
    def command(args):
        raise error

    parser = build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    for sub in parser._subparsers._group_actions[0].choices.values():
        sub.set_defaults(func=command)


def test_ctrl_c_outside_cv_is_one_line_and_v_adds_the_traceback(monkeypatch, capsys):
    _every_command_raises(monkeypatch, KeyboardInterrupt())
    assert main(["report", "x"]) == 130
    assert "interrupted" in _one_error_line(capsys)
    assert main(["report", "x", "-v"]) == 130
    assert "interrupted" in _one_error_line(capsys, traceback=True)


def test_out_under_a_file_ends_in_one_line_naming_the_path(deap_dat_dir, tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    assert _cv(deap_dat_dir, blocker / "run") == 2
    line = _one_error_line(capsys)
    assert str(blocker) in line and "--out" in line


@pytest.mark.parametrize("victim", ["fold_01.json", "report.json", "report.html", "config.yaml"])
def test_a_full_disk_ends_in_one_line_and_leaves_no_temporary_files(
        deap_dat_dir, tmp_path, monkeypatch, capsys, victim):
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if os.path.basename(dst) == victim:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    out = tmp_path / "run"
    assert _cv(deap_dat_dir, out) == 2
    line = _one_error_line(capsys)
    assert victim in line and "No space left on device" in line and "free some space" in line
    assert not list(out.rglob(".physiosync-tmp-*"))


def test_an_unexpected_exception_asks_for_a_report_with_the_version(monkeypatch, capsys):
    _every_command_raises(monkeypatch, IndexError("list index out of range"))
    assert main(["report", "x"]) == 1
    line = _one_error_line(capsys)
    assert "unexpected IndexError" in line and "bug" in line
    assert physiosync.__version__ in line and "-v" in line
    assert main(["report", "x", "-v"]) == 1
    _one_error_line(capsys, traceback=True)


def test_cv_writes_run_log_and_an_absolute_data_root(deap_dat_dir, tmp_path, monkeypatch,
                                                     capsys):
    monkeypatch.chdir(deap_dat_dir.parent)
    out = tmp_path / "run"
    assert _cv(os.path.relpath(deap_dat_dir), out) == 0
    log = (out / "run.log").read_text()
    assert "INFO pipeline bandpower" in log and "\x1b" not in log
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["data"]["root"] == str(deap_dat_dir.absolute())
    assert logger.getEffectiveLevel() > logging.INFO  # the console is as quiet as before
    capsys.readouterr()
