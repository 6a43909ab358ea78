"""Synthetic copies of the real releases' size, declared once for the benchmarks.

:data:`FULL_SIZE` gives, for every dataset with a synthetic writer, the writer arguments
that write a copy of the real release's size, with what the copy is and where the real
numbers come from. ``benchmarks/run.py prepare --dataset NAME`` and
``benchmarks/config_costs.py`` write their data from it; :meth:`FullSize.shrunk` makes the
smaller copies of a quick check.

:meth:`FullSize.size` counts, before anything is written, the values the copy stores in
the files its reader reads (every channel of every trial, baselines and rests included),
per memory unit (a subject, or DREAMER's single file, which its reader loads whole) and in
bytes at the format's width (8 for the float64 pickles and MAT files, 3 for 24-bit BDF).
Headers, labels and ratings are left out; the MAT files are zlib-compressed by the
writers, which barely shrinks float64 noise. ``extra_bytes`` are files written beside
that the reader does not read as data (MAHNOB-HCI's neutral-clip sessions, SEED-IV's
feature files). Print the table::

    python benchmarks/_full_size.py
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import sys
from pathlib import Path

import numpy as np

#: The subjects of MAHNOB-HCI with usable sessions (12, 15 and 26 have none) and the
#: trials missing of those with fewer than 20 (docs/data.md, MAHNOB-HCI): 527 in all.
MAHNOB_SUBJECTS = tuple(s for s in range(1, 31) if s not in (12, 15, 26))
MAHNOB_MISSING = {2: 0, 3: 3, 9: 6, 16: 4}  # 2: 0 turns off the writer's demo quirk


@dataclasses.dataclass(frozen=True)
class Size:
    """What a synthetic copy holds (see the module docstring)."""

    subjects: int
    trials: int
    values: int
    unit_values: int
    bytes: int
    extra_bytes: int
    unit: str

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class FullSize:
    """One dataset's synthetic copy: writer arguments and what they stand for.

    Parameters
    ----------
    dataset : str
        Its name in :data:`physiosync.dataset_specs.DATASET_SPECS`.
    kind : str
        The ``physiosync synth`` kind whose writer writes it.
    kwargs : dict
        The writer's keyword arguments (the writer's defaults fill the rest).
    description : str
        What the copy is, in one line, with the real numbers it follows.
    source : str
        Where those numbers come from.
    shape : str
        The copy's size in a few words for cost headers, formatted with ``kwargs`` and
        ``trials`` (the trials the reader reads).
    unit : str
        What a reader holds in memory at once: ``"subject"`` or ``"file"``.
    full : bool
        Whether these are the full size's arguments (False after :meth:`shrunk` changed
        them).
    """

    dataset: str
    kind: str
    kwargs: dict
    description: str
    source: str
    shape: str
    unit: str = "subject"
    full: bool = True

    @property
    def spec(self):
        from physiosync.dataset_specs import DATASET_SPECS

        return DATASET_SPECS[self.dataset]

    def writer(self):
        from physiosync.dataset_specs import synthetic_writer

        return synthetic_writer(self.kind)

    def arguments(self) -> dict:
        """Every argument of the writer: :attr:`kwargs` over the writer's defaults."""
        params = inspect.signature(self.writer()).parameters.values()
        defaults = {p.name: p.default for p in params if p.default is not p.empty}
        return {**defaults, **self.kwargs}

    def shrunk(self, subjects: int | None = None, trials: int | None = None,
               seconds: float | None = None) -> FullSize:
        """A smaller copy for a quick check: the first *subjects*, *trials* clips per
        session, clips of about *seconds* (longer clips, as AMIGOS's long videos, scaled
        by the same factor; baselines and rests as in the release)."""
        kw = dict(self.kwargs)
        for what, value, key in (("subjects", subjects, "n_subjects"),
                                 ("trials", trials, "n_trials")):
            if value is not None and not 1 <= value <= kw[key]:
                raise ValueError(f"{self.dataset}: {what} must be 1..{kw[key]} (the full-size "
                                 f"copy's), got {value!r}.")
        if seconds is not None and not seconds > 0:
            raise ValueError(f"{self.dataset}: seconds must be positive, got {seconds!r}.")
        if subjects is not None:
            if "subject_ids" in kw:
                kw["subject_ids"] = tuple(kw["subject_ids"])[:subjects]
            kw["n_subjects"] = subjects
        if trials is not None:
            kw["n_trials"] = trials
        if seconds is not None:
            factor = float(seconds) / kw["seconds"]
            kw["seconds"] = float(seconds)
            if "long_seconds" in kw:
                kw["long_seconds"] = kw["long_seconds"] * factor
        return dataclasses.replace(self, kwargs=kw, full=self.full and kw == self.kwargs)

    @property
    def folder(self) -> str:
        """The copy's folder name: the dataset, with its sizes when not full size."""
        if self.full:
            return self.dataset
        kw = self.kwargs
        return f"{self.dataset}-{kw['n_subjects']}x{kw['n_trials']}x{kw['seconds']:g}s"

    def size(self) -> Size:
        """The copy's size, counted from the writer's arguments (nothing is written)."""
        kw = self.arguments()
        units, trials, width, extra = _COUNTERS[self.dataset](kw)
        values = int(sum(units))
        return Size(subjects=len(units) if self.unit == "subject" else kw["n_subjects"],
                    trials=int(trials), values=values, unit_values=int(max(units)),
                    bytes=values * width, extra_bytes=int(extra), unit=self.unit)

    def text(self) -> str:
        """The size in words, as cost headers give it."""
        return self.shape.format(trials=self.size().trials, **self.arguments())

    def write(self, out) -> Path:
        """Write the copy into folder *out* once (a file ``complete`` marks it done) and
        return *out*, which the dataset's reader opens."""
        out = Path(out)
        done = out / "complete"
        if not done.exists():
            size = self.size()
            print(f"# writing synthetic {self.spec.display_name} ({self.text()}): "
                  f"{size.bytes / 1e9:.2f} GB of data + {size.extra_bytes / 1e9:.2f} GB beside",
                  file=sys.stderr, flush=True)
            self.writer()(out, seed=0, verbose=False, **self.kwargs)
            done.write_text("")
        return out


# ----------------------------------------------------------- counts per dataset
# Each returns (values per memory unit, trials, bytes per value, bytes of other files),
# following its writer (physiosync/synthetic/).
def _deap(kw):
    from physiosync.datasets._channels import DEAP_DAT_CHANNELS, DEAP_SFREQ_DAT

    n = round(kw["baseline_seconds"] * DEAP_SFREQ_DAT) + round(kw["seconds"] * DEAP_SFREQ_DAT)
    per = kw["n_trials"] * len(DEAP_DAT_CHANNELS) * n
    return [per] * kw["n_subjects"], kw["n_subjects"] * kw["n_trials"], 8, 0


def _dreamer(kw):
    from physiosync.datasets._channels import DREAMER_ECG, DREAMER_EEG, DREAMER_SFREQ
    from physiosync.synthetic.dreamer import synthetic_clip_seconds

    clips = synthetic_clip_seconds(kw["n_trials"], kw["seconds"], kw["seed"])
    per = 0
    for m, names in (("eeg", DREAMER_EEG), ("ecg", DREAMER_ECG)):
        rate = DREAMER_SFREQ[m]
        n = sum(round(kw["baseline_seconds"] * rate) + int(c * rate) for c in clips)
        per += len(names) * n
    # one unit: the reader loads the whole file
    return [per * kw["n_subjects"]], kw["n_subjects"] * kw["n_trials"], 8, 0


def _amigos(kw):
    from physiosync.datasets.amigos import AMIGOS_BASELINE_S, AMIGOS_SFREQ, N_COLUMNS, N_SHORT
    from physiosync.synthetic.dreamer import synthetic_clip_seconds

    n_short = min(kw["n_trials"], N_SHORT)
    long_seconds = kw["long_seconds"] or 4.0 * kw["seconds"]
    clips = np.concatenate([
        synthetic_clip_seconds(n_short, kw["seconds"], kw["seed"]),
        synthetic_clip_seconds(kw["n_trials"] - n_short, long_seconds, kw["seed"] + 1)
        if kw["n_trials"] > n_short else np.zeros(0, int)])
    empty = {tuple(p) for p in kw["empty_trials"]}
    units, trials = [], 0
    for s in range(1, kw["n_subjects"] + 1):
        kept = [t for t in range(kw["n_trials"]) if (s, t) not in empty
                and not (s in set(kw["no_long_videos"]) and t >= N_SHORT)]
        units.append(sum(N_COLUMNS * (round(AMIGOS_BASELINE_S * AMIGOS_SFREQ)
                                      + round(clips[t] * AMIGOS_SFREQ)) for t in kept))
        trials += len(kept)
    return units, trials, 8, 0


def _mahnob(kw):
    from physiosync.datasets._channels import MAHNOB_SFREQ
    from physiosync.synthetic.dreamer import synthetic_clip_seconds
    from physiosync.synthetic.mahnob import _LABELS, _default_ids, _plan

    ids, ghost = _default_ids(kw["n_subjects"], kw["quirks"])
    if kw["subject_ids"] is not None:  # as make_mahnob picks the subject without BDFs
        ids = [int(s) for s in kw["subject_ids"]]
        ghost = min(set(range(1, 31)) - set(ids), default=None) if kw["quirks"] else None
    n = kw["n_trials"]
    missing = {2: max(1, n // 4)} if kw["quirks"] and n > 1 else {}
    missing.update(kw["missing_trials"] or {})
    clips = synthetic_clip_seconds(n, kw["seconds"], kw["seed"])
    rate = int(MAHNOB_SFREQ)
    rest = 2 * round(kw["rest_seconds"] * rate)
    neutral = max(round(kw["neutral_seconds"] * rate), 1)
    units, trials, extra = {}, 0, 0
    for _, s, _, kind, video, bdf in _plan(ids, ghost, n, kw["seed"], missing, kw["quirks"]):
        if bdf is None:
            continue
        if kind == "N":  # neutral-clip sessions: written, not read
            extra += 3 * len(_LABELS) * (rest + neutral)
            continue
        units[s] = units.get(s, 0) + len(_LABELS) * (rest + int(clips[video]) * rate)
        trials += 1
    return list(units.values()), trials, 3, extra


def _seed(kw):
    from physiosync.datasets._seed import SEED_EEG, SEED_SFREQ
    from physiosync.synthetic.seed import seed_clip_seconds

    from physiosync.dataset_specs import DATASET_SPECS

    clips = seed_clip_seconds(kw["seconds"])[:kw["n_trials"]]
    n_sessions = len(DATASET_SPECS["seed"].sessions)
    per = n_sessions * len(SEED_EEG) * sum(int(round(c * SEED_SFREQ)) + 1 for c in clips)
    return [per] * kw["n_subjects"], kw["n_subjects"] * n_sessions * len(clips), 8, 0


def _seed_iv(kw):
    from physiosync.datasets._seed import SEED_EEG
    from physiosync.datasets.seed_iv import FEATURE_WINDOW_S
    from physiosync.synthetic.seed import seed_iv_clip_seconds

    clips = {k: c[:kw["n_trials"]] for k, c in
             seed_iv_clip_seconds(kw["seconds"], kw["seed"]).items()}
    per = sum(len(SEED_EEG) * int(round(c * kw["sfreq"])) for v in clips.values() for c in v)
    # four feature arrays (62, windows, 5) per clip, float64
    features = sum(4 * len(SEED_EEG) * int(c // FEATURE_WINDOW_S) * 5 * 8
                   for v in clips.values() for c in v) if kw["features"] else 0
    n = kw["n_subjects"]
    return [per] * n, n * sum(len(v) for v in clips.values()), 8, n * features


_COUNTERS = {"deap": _deap, "dreamer": _dreamer, "amigos": _amigos, "mahnob": _mahnob,
             "seed": _seed, "seed-iv": _seed_iv}


def _seed_iv_mean_seconds() -> float:
    """The mean clip length of SEED-IV's session 1: 4 s x its feature window counts."""
    from physiosync.datasets.seed_iv import FEATURE_WINDOW_S
    from physiosync.synthetic.seed import _SEED_IV_WINDOWS_S1

    return float(FEATURE_WINDOW_S * np.mean(_SEED_IV_WINDOWS_S1))


def _seed_mean_seconds() -> float:
    from physiosync.datasets.seed import SEED_CLIP_SECONDS

    return float(np.mean(SEED_CLIP_SECONDS))


#: The full-size copy of each dataset with a synthetic writer.
FULL_SIZE: dict[str, FullSize] = {e.dataset: e for e in (
    FullSize(
        "deap", "deap", dict(n_subjects=32, n_trials=40, seconds=60.0),
        "DEAP's preprocessed release: 32 subjects x 40 videos, each 3 s of baseline and "
        "60 s of video, 40 channels at 128 Hz, float64 Python-2 pickles",
        "docs/data.md, DEAP",
        "{n_subjects} subjects x {n_trials} videos x {seconds:g} s"),
    FullSize(
        "dreamer", "dreamer", dict(n_subjects=23, n_trials=18, seconds=199.0),
        "DREAMER.mat: 23 participants x 18 clips of 199 s +/- 30 % (the release's mean; its "
        "clips last 65-393 s), each with its 61 s baseline; EEG 14 channels at 128 Hz, ECG "
        "2 leads at 256 Hz; one file, which the reader loads whole",
        "docs/data.md, DREAMER",
        "{n_subjects} subjects x {n_trials} clips of {seconds:g} s +/- 30 %", unit="file"),
    FullSize(
        "amigos", "amigos",
        dict(n_subjects=40, n_trials=20, seconds=87.5, long_seconds=1200.0),
        "AMIGOS's preprocessed release: 40 participants x 16 short videos of 87.5 s and 4 "
        "long ones of 1200 s, each +/- 30 % after a 5 s baseline, 17 columns at 128 Hz, "
        "float64; P08, P24 and P28 without long videos. The means follow the release's "
        "external annotations, one per 20 s: 94 segments over the short videos and 246 "
        "over the long ones per participant, a trial of k segments lasting about "
        "20 k - 25 s by the release's segment rule; they fall in the ranges docs/data.md "
        "gives (50-150 s, 14-24 min)",
        "docs/data.md, AMIGOS; the release's annotation segment counts",
        "{n_subjects} participants x {n_trials} videos (up to 16 short ones of {seconds:g} s, "
        "then long ones of {long_seconds:.0f} s, +/- 30 %)"),
    FullSize(
        "mahnob", "mahnob",
        dict(n_subjects=len(MAHNOB_SUBJECTS), n_trials=20, seconds=75.0,
             subject_ids=MAHNOB_SUBJECTS, missing_trials=MAHNOB_MISSING,
             neutral_seconds=14.0),
        "MAHNOB-HCI's emotion sessions: the release's 27 subjects and 527 stimulus trials "
        "(20 clips each; subjects 3, 9 and 16 lack 3, 6 and 4), clips of 75 s +/- 30 % "
        "(the release's last 34-117 s), 30 s of rest before and after, 47 channels at "
        "256 Hz in 24-bit BDF; beside them the neutral-clip sessions of 14 s (5.3-22.2 s in "
        "the release), which are not read",
        "docs/data.md, MAHNOB-HCI; the release's session listing",
        "{n_subjects} subjects, {trials} trials of {seconds:g} s +/- 30 % between 30 s "
        "rests"),
    FullSize(
        "seed", "seed",
        dict(n_subjects=15, n_trials=15, seconds=_seed_mean_seconds()),
        "SEED's Preprocessed_EEG: 15 subjects x 3 sessions x 15 clips of the release's "
        "lengths (185-265 s, 3394 s a session), 200 d + 1 samples of 62 channels at 200 Hz, "
        "float64; no baseline",
        "docs/data.md, SEED and SEED-IV",
        "{n_subjects} subjects x 3 sessions x {n_trials} clips of {seconds:.0f} s on "
        "average"),
    FullSize(
        "seed-iv", "seed-iv",
        dict(n_subjects=15, n_trials=24, seconds=_seed_iv_mean_seconds()),
        "SEED-IV's eeg_raw_data: 15 subjects x 3 sessions x 24 clips, session 1 of the "
        "release's lengths (4 s x its feature files' window counts, 48-256 s; sessions 2 "
        "and 3 a permutation of them), 62 channels at 200 Hz, float64, with the "
        "eeg_feature_smooth files beside; no baseline",
        "docs/data.md, SEED and SEED-IV",
        "{n_subjects} subjects x 3 sessions x {n_trials} clips of {seconds:.0f} s on "
        "average"),
)}


def main() -> int:
    for entry in FULL_SIZE.values():
        row = {"dataset": entry.dataset, "writer": entry.kind,
               "kwargs": {k: list(v) if isinstance(v, tuple) else v
                          for k, v in entry.kwargs.items()},
               **entry.size().as_dict(), "text": entry.text(),
               "description": entry.description, "source": entry.source}
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
