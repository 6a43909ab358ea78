"""Format-faithful synthetic DEAP, DREAMER and MAHNOB-HCI datasets.

The files written here are the real formats, with their quirks, so that every reader
(physiosync's, Python's own latin1 unpickling, ``mne.io.read_raw_bdf``,
``scipy.io.loadmat``) reads them exactly as it reads the licensed data:

* :func:`make_deap` -- ``data_preprocessed_python/sXX.dat``: Python-2 protocol-2 pickles
  of ``{"labels": (n_trials, 4) float64, "data": (n_trials, 40, n_samples) float64}``.
* :func:`make_deap_bdf` -- ``data_original/sXX.bdf``: BioSemi BDF with 48 or 49
  channels, Status-channel quirks, presentation order, plus ``participant_ratings.csv``.
* :func:`make_dreamer` -- ``DREAMER.mat``: a MATLAB v5 struct with the real layout.
* :func:`make_amigos` -- ``Data_Preprocessed_PXX.mat`` (MATLAB v5), one per participant,
  nested or flat, with participants without long videos, an empty and a NaN trial.
* :func:`make_mahnob` -- MAHNOB-HCI's ``Sessions/<id>/`` folders: ``session.xml`` and
  47-channel BioSemi BDF files, with unrated neutral-clip sessions and missing trials.
* :func:`make_seed` -- SEED's ``Preprocessed_EEG/<subject>_<date>.mat`` and ``label.mat``.
* :func:`make_seed_iv` -- SEED-IV's ``eeg_raw_data/<session>/<subject>_<date>.mat``,
  ``eeg_feature_smooth/`` and ``ReadMe.txt``.

Signals carry a tunable emotion effect (see :class:`SubjectSimulator`); ``effect=0``
makes the labels independent of the signals. Defaults are small, so tests run in
seconds; pass the real sizes (``n_subjects=32, n_trials=40, seconds=60`` for DEAP)
for a full-size set.

Every writer also takes two options of the simulation:

* ``synchrony`` (default 1.0): strength of each video's stimulus-locked affective time
  course, shared by all its viewers (subject-specific gain, lag under 0.35 s, private
  noise) and expressed at the same seconds in the EEG (band-power envelopes, a slow
  cortical component, and evoked responses to the video's salient events) and the
  peripheral signals (skin-conductance responses, heart rate, respiration). This is the inter-subject and cross-modal synchrony that
  PhysioSync's pre-training learns from, so it is on by default. At 1 the shared
  fluctuation has SD 0.5 on the latent emotion scale on which the per-video levels
  span [-1, 1] (before ``effect`` scales them): strong enough that pre-training with
  the multi-view embedding on 5 s windows beats a collapsed encoder, mild enough that
  the emotion effect stays decodable from single windows (stronger values add
  within-trial variance that small deep models pay for). The course has mean zero and does not
  depend on the ratings, so ``effect=0`` still gives signals independent of the
  labels. ``synchrony=0`` writes stationary trials, in which nothing but the ratings
  is shared across subjects.
* ``rating_bias`` (default 0): SD of a per-subject offset of the ratings, as a
  fraction of the rating range (0.25 = 2 points on DEAP's 1-9 scales), so that some
  subjects rate most videos high and others most low, as in DEAP. It changes the
  reported ratings only (a response style), not the signals. ``0`` keeps the ratings
  of earlier versions.
* ``affect`` (default ``"static"``, the model above, unchanged): ``"dynamics"`` makes
  each video's emotion a trajectory that every viewer feels (gain, lag, appraisal,
  private noise), that the ratings summarise (mean and peak-end) and that all the
  physiology follows moment by moment (:mod:`physiosync.synthetic._dynamics`).
  ``affect_share`` sets the affect-related share of the stimulus-locked variance, and
  ``control`` (``"static-affect"``, ``"shuffled"``; ``synchrony=0`` is the third) gives
  paired controls drawn from the same random streams.
"""

from ._simulate import SubjectSimulator
from .amigos import make_amigos
from .deap import make_deap, make_deap_bdf
from .dreamer import make_dreamer
from .mahnob import make_mahnob
from .seed import make_seed, make_seed_iv

__all__ = ["make_deap", "make_deap_bdf", "make_dreamer", "make_amigos", "make_mahnob",
           "make_seed", "make_seed_iv", "SubjectSimulator"]
