"""The command line shared by the benchmarks that repeat a study over seeds."""

from __future__ import annotations

import argparse


def seed_study_parser(doc: str) -> argparse.ArgumentParser:
    """A parser with the options every seed study takes: ``--out`` and ``--seeds``."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="Markdown file to write (+ .json beside)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    return parser
