"""benchmarks/gpu_probes.py and gpu_check.sh run on the CPU (their degraded form), so they
are known to work before GPU minutes are spent on them; their figures come from a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from _benchmarks import load_benchmark
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


@pytest.fixture(scope="module")
def probes():
    return load_benchmark("gpu_probes")


def _line(capsys) -> dict:
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    record = json.loads(lines[0])
    assert record["versions"]["torch"] == torch.__version__
    return record


def test_the_probes_run_on_the_cpu_in_their_degraded_form(probes, capsys):
    cpu = ["--device", "cpu", "--steps", "2"]
    assert probes.main(["host-sync", *cpu]) == 0
    sync = _line(capsys)
    for loop in ("pretrain", "finetune"):
        # the host reads are counted (the CPU's proxy); the CUDA warnings are not
        assert sync[loop]["host_reads_per_step"] is not None
        assert sync[loop]["sync_warnings_per_step"] is None
        assert sync[loop]["runs"][1]["host_reads"] >= sync[loop]["runs"][0]["host_reads"] > 0
    assert probes.main(["bf16", *cpu, "--window", "1"]) == 0
    bf16 = _line(capsys)
    assert bf16["curves"]["steps"] == 2 and bf16["curves"]["finite"]
    assert not bf16["curves"]["identical"]  # bf16 rounds: a close curve, not the same one
    assert probes.main(["graphs", *cpu, "--window", "1", "--backend", "eager"]) == 0
    graphs = _line(capsys)
    assert graphs["eeg_dropout"] > 0 and graphs["projector_dropout"] > 0  # dropout on
    # Dynamo with the eager backend replays the eager ops: the same dropout draws
    assert graphs["curves"]["identical"] and graphs["curves"]["agree"]


def test_the_compile_probe_logs_and_counts_over_folds(probes, tmp_path, capsys):
    log = tmp_path / "torch_logs.txt"
    assert probes.main(["compile-log", "--device", "cpu", "--steps", "2", "--folds", "2",
                        "--mode", "default", "--backend", "eager", "--log", str(log)]) == 0
    record = _line(capsys)
    assert record["rc"] == 0 and log.is_file()
    assert len(record["per_fold"]) == 2 and record["per_fold"][0]["unique_graphs"] >= 1
    assert record["recompiles"] >= 0 and record["graph_breaks"] >= 0


def test_recompiles_and_graph_breaks_are_counted_from_torch_logs(probes):
    # lines as TORCH_LOGS=recompiles,graph_breaks writes them (torch 2.13)
    head = "V1207 14:47:34.831000 30228 torch/_dynamo/"
    log = "\n".join([
        f"{head}symbolic_convert.py:5124] [0/0] [__graph_breaks] Graph break in user code at "
        "/x/m.py:4",
        f"{head}symbolic_convert.py:5124] [0/0] [__graph_breaks] Graph Break Reason: print",
        f"{head}guards.py:5396] [0/1] [__recompiles] Recompiling function g in /x/m.py:2",
        f"{head}guards.py:5396] [0/1] [__recompiles]     triggered by the following guard "
        "failure(s):",
        f"{head}guards.py:5396] [0/1] [__recompiles]     - 0/0: tensor 'z' rank mismatch. "
        "expected 1, actual 2",
        f"{head}symbolic_convert.py:5131] [0/1] [__graph_breaks] Graph break (user stack "
        "suppressed due to duplicate graph break) in user code at /x/m.py:4",
        f"{head}guards.py:5396] [0/2] [__recompiles] Recompiling function g in /x/m.py:2"])
    counts = probes._count_log(log)
    assert counts["recompiles"] == 2 and counts["graph_breaks"] == 2
    assert counts["graph_break_places"] == {"/x/m.py:4": 2}
    assert counts["recompiled_functions"] == {"g /x/m.py:2": 2}
    assert counts["recompile_reasons"] == {"tensor 'z' rank mismatch. expected 1, actual 2": 1}


def test_every_line_gets_the_versions(probes, tmp_path, capsys, monkeypatch):
    import io

    monkeypatch.setenv("GPU_CHECK_VERSIONS", json.dumps(probes.versions()))
    probes.stamp(io.StringIO('{"benchmark": "finetune"}\nnot json\n'), check="finetune",
                 part="part2")
    captured = capsys.readouterr()
    line = json.loads(captured.out)
    assert line["check"] == "finetune" and line["part"] == "part2"
    assert line["benchmark"] == "finetune" and line["versions"]["torch"] == torch.__version__
    assert captured.err == "not json\n"
    junit = tmp_path / "t.xml"
    junit.write_text('<testsuites><testsuite tests="3" failures="1" errors="0" skipped="1">'
                     '<testcase classname="tests.test_gpu" name="test_a"><failure/></testcase>'
                     '<testcase classname="tests.test_gpu" name="test_b"/>'
                     '<testcase classname="tests.test_gpu" name="test_c"><skipped/></testcase>'
                     '</testsuite></testsuites>')
    assert probes.main(["record", "--check", "gpu-tests", "--rc", "1",
                        "--junit", str(junit)]) == 0
    record = _line(capsys)
    assert record["junit"] == {"tests": 3, "failures": 1, "errors": 0, "skipped": 1,
                               "passed": 1, "failed": ["tests.test_gpu::test_a"]}
    assert probes.main(["record", "--check", "graphs", "--rc", "124"]) == 0
    assert _line(capsys)["timed_out"] is True
    assert probes.main(["record", "--check", "x", "--junit", str(tmp_path / "no.xml")]) == 0
    assert _line(capsys)["junit"].startswith("unreadable")


def test_gpu_check_names_its_parts():
    out = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True)
    assert out.returncode == 2 and "{part1|part2|study}" in out.stderr


@pytest.mark.slow
def test_gpu_check_runs_both_parts_on_the_cpu(tmp_path):
    """The script's smoke path (about a minute of CPU time each part)."""
    env = {**os.environ, "OUT": str(tmp_path), "DEVICE": "cpu", "QUICK": "1",
           "SKIP_WHEELS": "1", "THROUGHPUT": "0", "GPU_TESTS": "tests/training/test_gpu.py",
           "PYTHON": sys.executable}
    for part in ("part1", "part2"):
        out = subprocess.run(["bash", str(SCRIPT), part], env=env, capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(x) for x in (tmp_path / "gpu_check.jsonl").read_text().splitlines()]
    assert [x["check"] for x in lines] == ["gpu-tests", "compile-log", "host-sync", "bf16",
                                           "graphs"]
    assert all(x["versions"]["torch"] == torch.__version__ for x in lines)
    assert all(x.get("rc", 0) in (0, 5) for x in lines), lines  # 5: pytest collected none
    assert lines[0]["junit"]["skipped"] == lines[0]["junit"]["tests"] > 0  # no CUDA here
    for name in ("gpu_tests.log", "gpu_tests.xml", "torch_logs.txt", "gpu_check_part1.err"):
        assert (tmp_path / name).is_file()
