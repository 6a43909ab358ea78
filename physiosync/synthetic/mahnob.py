"""Synthetic MAHNOB-HCI (emotion elicitation): ``Sessions/<id>/session.xml`` + BDF files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from .._logging import logger, progress, verbose
from .._utils import atomic_write
from ..datasets._channels import (MAHNOB_BASELINE_S, MAHNOB_BDF_EXTRA, MAHNOB_ECG, MAHNOB_EEG,
                                  MAHNOB_SFREQ, MAHNOB_UNUSED)
from ..datasets.mahnob import RATING_ATTRIBUTES, SESSION_XML, SESSIONS
from ..exceptions import PhysioSyncError
from ._bdf import bdf_stream
from ._dynamics import Simulation
from ._guard import check_folder, recording_synth
from ._simulate import check_simulation_options, check_sizes, subject_rng
from .dreamer import synthetic_clip_seconds

__all__ = ["make_mahnob", "session_id"]

N_SUBJECTS = 30
N_TRIALS = 20
#: Status value of the two trigger pulses (low 16 bits, as reported for the release) and
#: their length in samples.
TRIGGER = 268
PULSE_SAMPLES = 26
_LABELS = list(MAHNOB_EEG) + list(MAHNOB_BDF_EXTRA) + ["Status"]


def session_id(subject: int, k: int, kind: str = "S") -> int:
    """The release's session folder of trial *k* (1-based) of *subject*: ``(p-1)*130 + 2k``
    for the stimulus (``"S"``), one less for the neutral clip before it (``"N"``)."""
    return (int(subject) - 1) * 130 + 2 * int(k) - (1 if kind == "N" else 0)


def _felt_emotion(rng, valence: float, arousal: float) -> int:
    """A ``feltEmo`` keyword code that fits the quadrant of the ratings."""
    if valence >= 5:
        choices = (4, 11, 6) if arousal >= 5 else (0, 4)
    else:
        choices = (3, 1, 2, 12) if arousal >= 5 else (5, 0)
    return int(rng.choice(choices))


def _session_xml(sid: int, subject: int, k: int, kind: str, media: str, seconds: float,
                 bdf: str | None, ratings=None, felt: int | None = None) -> str:
    attrs = {"sessionId": sid, "date": f"2009-{1 + subject % 12:02d}-{1 + k:02d}",
             "time": f"{9 + k // 4:02d}:{(7 * k) % 60:02d}:00", "experimentType": "emotion",
             "isStim": "1" if kind == "S" else "0", "cutNr": 2 * k - (kind == "N"),
             "cutLenSec": f"{seconds:.3f}", "vidRate": "60.9708", "mediaFile": media}
    if ratings is not None:  # the neutral-clip sessions have no felt-emotion attributes
        attrs["feltEmo"] = felt
        for value, key in zip(ratings, RATING_ATTRIBUTES.values()):
            attrs[key] = int(value)
    text = " ".join(f"{key}={quoteattr(str(value))}" for key, value in attrs.items())
    track = (f'  <track type="Physiological" filename={quoteattr(bdf)}/>\n' if bdf else "")
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<session {text}>\n'
            f'  <subject id="{subject}"/>\n{track}</session>\n')


def _write_bdf(path: Path, subject: int, sim, rng, keys, clip_n: int, rest_n: int,
               state=None) -> None:
    """One session's BDF: rest, the clip (with its state), rest; two Status pulses."""
    sfreq = int(MAHNOB_SFREQ)

    def segment(n: int, st) -> np.ndarray:
        key = next(keys)
        block = np.empty((len(_LABELS), n))
        block[:32] = sim.signal("eeg", MAHNOB_EEG, sfreq, n, key, st)
        block[32:35] = sim.signal("ecg", MAHNOB_ECG, sfreq, n, key, st)
        block[_LABELS.index("GSR1")] = sim.signal("gsr", None, sfreq, n, key, st)[0]
        block[_LABELS.index("Resp")] = sim.signal("resp", None, sfreq, n, key, st)[0]
        block[_LABELS.index("Temp")] = sim.signal("temp", None, sfreq, n, key, st)[0]
        for name in MAHNOB_UNUSED:  # "no meaningful data": a little amplifier noise
            block[_LABELS.index(name)] = rng.normal(0.0, 1.0, n)
        block[-1] = 0.0
        return block

    parts = [segment(rest_n, None), segment(clip_n, state), segment(rest_n, None)]
    for part in parts[1:]:  # pulses at the onset and at the end of the clip
        part[-1, :PULSE_SAMPLES] = TRIGGER
    with bdf_stream(path, _LABELS, sfreq, patient=f"P{subject}",
                    start=datetime(2009, 1, 1, 9, 0, 0)) as stream:
        for part in parts:
            stream.add(part)


def _default_ids(n_subjects: int, quirks: bool) -> tuple[list[int], int | None]:
    """The subjects written, and the id of the subject without usable sessions."""
    if not quirks:
        return list(range(1, n_subjects + 1)), None
    ids = [s for s in range(1, n_subjects + 2) if s != 3][:n_subjects]
    return ids, 3 if n_subjects >= 3 else n_subjects + 1


@verbose
def make_mahnob(out, n_subjects: int = 3, n_trials: int = 4, seconds: float = 10.0,
                effect: float = 2.0, seed: int = 0, *, quirks: bool = True,
                subject_ids=None, missing_trials=None,
                rest_seconds: float = MAHNOB_BASELINE_S, neutral_seconds: float = 5.0,
                synchrony: float = 1.0, rating_bias: float = 0.0, affect: str = "static",
                affect_share: float | None = None, control: str = "none",
                verbose: bool | str | int | None = None) -> Path:
    """Write a synthetic MAHNOB-HCI download: ``OUT/Sessions/<id>/`` folders.

    Each stimulus session ``(p-1)*130 + 2k`` (subject ``p``, presentation position
    ``k``) holds ``session.xml`` (``<session ... mediaFile feltEmo feltArsl feltVlnc
    feltCtrl feltPred>`` with ``<subject id>`` and a ``<track>``) and
    ``Part_<p>_S_Trial<k>_emotion.bdf``: 47 channels at 256 Hz in the release's order
    (32 EEG, ``EXG1``-``EXG3`` ECG, ``EXG4``-``EXG8``, ``GSR2``, ``Erg1``, ``Erg2``
    low noise, ``GSR1`` skin resistance in Ohm, ``Resp``, ``Temp`` in degC, ``Status``),
    *rest_seconds* of rest, the clip, *rest_seconds* of rest, with two Status pulses
    (value 268, 0.1 s) at the clip's onset and end. Clip ``t`` is ``mediaFile`` number
    ``t`` in natural order (the names' numbers are not in their lexicographic order);
    every subject sees every clip, in an order of their own. During a clip the signals
    follow the subject's ratings (integers 1-9) and the clip's stimulus-locked time
    course, shared by every subject (:mod:`physiosync.synthetic`).

    Parameters
    ----------
    out : str | Path
        The download folder to create (or fill); ``Sessions/`` is written into it.
    n_subjects : int
        Subjects with usable sessions, at most 30.
    n_trials : int
        Clips per subject, at most 20 (the release's number).
    seconds : float
        Typical clip length; each clip gets ``seconds`` +/- up to 30 % in whole seconds,
        the same for every subject (the release's clips last 34-117 s).
    %(effect)s
    seed : int
        Seed; the same arguments write the same files.
    quirks : bool
        Write the release's quirks:

        * before each stimulus session, the neutral-clip session ``(p-1)*130 + 2k - 1``
          with ``Part_<p>_N_Trial<k>_emotion.bdf`` (*neutral_seconds* long between the
          rests) and a ``session.xml`` with ``isStim="0"`` and no ``felt*`` attributes;
        * subject 2 misses ``max(1, n_trials // 4)`` trials (no folders at all), as
          subjects 3, 9 and 16 of the release do;
        * a subject without usable sessions (id 3, or ``n_subjects + 1`` when fewer than
          three are written): its rated ``session.xml`` files have no BDF beside them
          (as subject 26 of the release); the usable subjects' ids skip it.

        ``quirks=False`` writes subjects ``1..n`` with every trial and stimulus sessions
        only.
    subject_ids : sequence of int | None
        Ids (1-30) of the usable subjects; by default as above.
    missing_trials : dict of int -> int | None
        ``{subject id: trials without folders}``, updating the default ``{2: ...}``.
    rest_seconds : float
        Rest before and after each clip (30 s in the release: the baseline).
    neutral_seconds : float
        Length of the neutral clips (5.3-22.2 s in the release).
    synchrony, rating_bias : float
        As for :func:`~physiosync.synthetic.make_deap` (on the 1-9 scale).
    %(affect)s
    %(verbose)s

    Returns
    -------
    out : Path
        The folder written (it holds ``Sessions/``).
    """
    check_sizes(n_subjects, n_trials, seconds, N_SUBJECTS, N_TRIALS)
    options = check_simulation_options(synchrony, rating_bias, affect=affect,
                                       affect_share=affect_share, control=control)
    for name, value in (("rest_seconds", rest_seconds), ("neutral_seconds", neutral_seconds)):
        if not value > 0:
            raise PhysioSyncError(f"{name} must be positive, got {value!r}.")
    ids, ghost = _default_ids(n_subjects, quirks)
    if subject_ids is not None:
        ids = [int(s) for s in subject_ids]
        ghost = (min(set(range(1, N_SUBJECTS + 1)) - set(ids), default=None)
                 if quirks else None)
    if (len(ids) != n_subjects or len(set(ids)) != len(ids)
            or not all(1 <= s <= N_SUBJECTS for s in ids)):
        raise PhysioSyncError(f"subject_ids must be {n_subjects} distinct ids in 1..{N_SUBJECTS}"
                              f" (one per subject), got {subject_ids!r}.")
    missing = {2: max(1, n_trials // 4)} if quirks and n_trials > 1 else {}
    missing.update({int(k): int(v) for k, v in (missing_trials or {}).items()})
    out = Path(out).expanduser()
    sessions = out / SESSIONS
    sfreq = int(MAHNOB_SFREQ)
    clip_s = synthetic_clip_seconds(n_trials, seconds, seed)
    media = _media_names(n_trials, seed)
    plan = _plan(ids, ghost, n_trials, seed, missing, quirks)
    targets = [f"{SESSIONS}/{sid}/{name}" for sid, *_, bdf in plan
               for name in (SESSION_XML, bdf) if name]
    theirs = ([p.relative_to(out).as_posix() for p in sessions.glob("*/*")
               if p.name == SESSION_XML or p.suffix.lower() == ".bdf"]
              if sessions.is_dir() else [])
    check_folder(out, targets + theirs)
    sessions.mkdir(parents=True, exist_ok=True)
    simulation = Simulation(seed, options, effect, max(ids + [ghost or 0]), n_trials,
                            clip_s.astype(float), low=1, high=9, integer=True, n_scales=4)
    rest_n = int(round(rest_seconds * sfreq))
    with recording_synth(out):
        by_subject = {}
        for row in plan:
            by_subject.setdefault(row[1], []).append(row)
        for s in progress(sorted(by_subject), desc="synthetic MAHNOB-HCI"):
            rng = subject_rng(seed, s)
            sim = simulation.subject(s, rng)
            felt_rng = np.random.default_rng([int(seed), int(s), 2])
            keys = iter(range(10**6))
            for sid, _, k, kind, video, bdf in by_subject[s]:
                folder = sessions / str(sid)
                folder.mkdir(exist_ok=True)
                if kind == "N":
                    n_clip = max(int(round(neutral_seconds * sfreq)), 1)
                    xml = _session_xml(sid, s, k, "N", f"neutral{k}.avi", n_clip / sfreq, bdf)
                    state = None
                else:
                    r = simulation.reported[s - 1, video]
                    n_clip = int(clip_s[video]) * sfreq
                    xml = _session_xml(sid, s, k, "S", media[video], float(clip_s[video]),
                                       bdf, r, _felt_emotion(felt_rng, r[0], r[1]))
                    state = sim.trial(int(video), float(clip_s[video])) if bdf else None
                if bdf:
                    _write_bdf(folder / bdf, s, sim, rng, keys, n_clip, rest_n, state)
                atomic_write(folder / SESSION_XML, xml)
    logger.info("wrote synthetic MAHNOB-HCI (%d subjects x %d clips) to %s", len(ids),
                n_trials, sessions)
    return out


def _media_names(n_trials: int, seed: int) -> list[str]:
    """Clip file names whose numbers rise with the clip (not in lexicographic order)."""
    rng = np.random.default_rng([int(seed), 130])
    # one number below 10 and one above 99, so that the two orders differ (n_trials > 1)
    ends = [int(rng.integers(1, 10)), int(rng.integers(100, 160))][:n_trials]
    rest = rng.choice(np.arange(10, 100), size=n_trials - len(ends), replace=False)
    return [f"{n}.avi" for n in sorted(ends + [int(n) for n in rest])]


def _plan(ids, ghost, n_trials, seed, missing, quirks):
    """``(session id, subject, k, kind, video, bdf name or None)`` of every folder."""
    rows = []
    for s in sorted(ids + ([ghost] if ghost else [])):
        order = np.random.default_rng([int(seed), int(s), 1]).permutation(n_trials)
        n_missing = min(max(missing.get(s, 0), 0), n_trials - 1)
        dropped = set(np.random.default_rng([int(seed), int(s), 3]).choice(
            np.arange(2, n_trials + 1) if n_trials > 1 else [1], size=n_missing,
            replace=False).tolist()) if n_missing else set()
        for k, video in enumerate(order, 1):
            if k in dropped:
                continue
            kinds = ("N", "S") if quirks else ("S",)
            for kind in kinds:
                bdf = None if s == ghost else f"Part_{s}_{kind}_Trial{k}_emotion.bdf"
                if s == ghost and kind == "N":
                    continue
                rows.append((session_id(s, k, kind), s, k, kind, int(video), bdf))
    return rows
