"""Channel layouts of DEAP, DREAMER and MAHNOB-HCI (see ``docs/data.md`` for the sources)."""

from __future__ import annotations

from ..dataset_specs import DATASET_SPECS

# ---- DEAP -------------------------------------------------------------------------
#: The 32 EEG channels of the preprocessed DEAP release, in its (Geneva) order.
DEAP_EEG_GENEVA = (
    "Fp1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1", "P3", "P7",
    "PO3", "O1", "Oz", "Pz", "Fp2", "AF4", "Fz", "F4", "F8", "FC6", "FC2", "Cz",
    "C4", "T8", "CP6", "CP2", "P4", "P8", "PO4", "O2",
)
#: EEG order of the original BDF recordings made in Twente (participants 1-22).
DEAP_EEG_TWENTE = (
    "Fp1", "AF3", "F7", "F3", "FC1", "FC5", "T7", "C3", "CP1", "CP5", "P7", "P3",
    "Pz", "PO3", "O1", "Oz", "O2", "PO4", "P4", "P8", "CP6", "CP2", "C4", "T8",
    "FC6", "FC2", "F4", "F8", "AF4", "Fp2", "Fz", "Cz",
)
#: Participants recorded in Twente; the rest (23-32) were recorded in Geneva.
DEAP_TWENTE_SUBJECTS = frozenset(range(1, 23))

#: The 40 channels of ``sXX.dat``: 32 EEG, then the 8 peripheral channels.
DEAP_DAT_CHANNELS = DEAP_EEG_GENEVA + (
    "hEOG", "vEOG", "zEMG", "tEMG", "GSR", "Resp", "Plet", "Temp",
)
#: Modality name -> (first, stop) channel indices in ``sXX.dat``.
DEAP_DAT_SLICES = {
    "eeg": (0, 32), "eog": (32, 34), "emg": (34, 36), "gsr": (36, 37),
    "resp": (37, 38), "ppg": (38, 39), "temp": (39, 40),
}

#: The non-EEG labels of the 48-channel BDF files, after the 32 EEG channels.
DEAP_BDF_EXTRA = (
    "EXG1", "EXG2", "EXG3", "EXG4", "EXG5", "EXG6", "EXG7", "EXG8",
    "GSR1", "GSR2", "Erg1", "Erg2", "Resp", "Plet", "Temp",
)
#: Bipolar derivations of the BDF EXG channels that the preprocessed release stores.
DEAP_BDF_BIPOLAR = {
    "hEOG": ("EXG1", "EXG2"), "vEOG": ("EXG3", "EXG4"),
    "zEMG": ("EXG5", "EXG6"), "tEMG": ("EXG7", "EXG8"),
}
DEAP_SFREQ_DAT = 128.0
DEAP_SFREQ_BDF = 512.0
#: What the preprocessed release (``.dat``) did to its EEG: its readme's band-pass edges in
#: Hz and the common average reference (MNE info of :meth:`Recording.to_epochs`).
DEAP_DAT_EEG = {"highpass": 4.0, "lowpass": 45.0, "average_reference": True,
                "processing": "DEAP preprocessed release: down-sampled to 128 Hz, EOG "
                              "artefacts removed, band-passed 4-45 Hz, common average "
                              "reference"}
#: What it did to the peripheral signals (no filter is documented for them).
DEAP_DAT_PERIPHERAL = {"processing": "DEAP preprocessed release: down-sampled to 128 Hz"}
#: DREAMER's EEG as recorded by the Emotiv EPOC headset and released unprocessed: the
#: headset's own pass band (manufacturer's specification) and its CMS/DRL reference.
DREAMER_EEG_SIGNAL = {"highpass": 0.2, "lowpass": 45.0, "average_reference": False,
                      "processing": "DREAMER: raw Emotiv EPOC EEG as recorded (hardware "
                                    "band 0.2-45 Hz with 50/60 Hz notch filters, CMS/DRL "
                                    "reference at P3/P4); no filter or re-reference by the "
                                    "release"}
DEAP_BASELINE_S = 3.0
DEAP_STIMULUS_S = 60.0
#: The self-assessment scales (declared in the datasets' specifications): DEAP rates on
#: a continuous 1-9 scale, DREAMER on the 5-point SAM scale (integers 1-5). The readers
#: refuse ratings outside them.
DEAP_RATING_SCALE = DATASET_SPECS["deap"].rating_scale
DREAMER_RATING_SCALE = DATASET_SPECS["dreamer"].rating_scale
#: Status-channel code of music-video onset.
DEAP_TRIAL_ONSET_CODE = 4

# ---- DREAMER ----------------------------------------------------------------------
DREAMER_EEG = ("AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6",
               "F4", "F8", "AF4")
DREAMER_ECG = ("ECG_left", "ECG_right")
DREAMER_SFREQ = {"eeg": 128.0, "ecg": 256.0}
DREAMER_BASELINE_S = 61.0

# ---- MAHNOB-HCI --------------------------------------------------------------------
#: The 32 EEG channels of the MAHNOB-HCI BDF files: BioSemi's 32-channel order, the same
#: as DEAP's Geneva order.
MAHNOB_EEG = DEAP_EEG_GENEVA
#: The labels after the EEG in the 47-channel files (Status last, not listed).
MAHNOB_BDF_EXTRA = ("EXG1", "EXG2", "EXG3", "EXG4", "EXG5", "EXG6", "EXG7", "EXG8",
                    "GSR1", "GSR2", "Erg1", "Erg2", "Resp", "Temp")
#: The three ECG leads: upper right chest, upper left chest, left abdomen.
MAHNOB_ECG = ("EXG1", "EXG2", "EXG3")
#: Channels the database's documentation says hold no meaningful data: not read.
MAHNOB_UNUSED = ("EXG4", "EXG5", "EXG6", "EXG7", "EXG8", "GSR2", "Erg1", "Erg2")
MAHNOB_SFREQ = 256.0
#: The recording starts this long before the stimulus onset (and runs as long after it).
MAHNOB_BASELINE_S = 30.0
#: The self-assessment scale (integers 1-9), declared in the dataset's specification.
MAHNOB_RATING_SCALE = DATASET_SPECS["mahnob"].rating_scale
#: ``feltEmo`` codes of ``session.xml`` and their keywords.
MAHNOB_FELT_EMOTIONS = {0: "Neutral", 1: "Anger", 2: "Disgust", 3: "Fear", 4: "Joy",
                        5: "Sadness", 6: "Surprise", 11: "Amusement", 12: "Anxiety"}

# ---- per-modality MNE channel type, release unit and scale to SI ------------------
#: modality -> (MNE channel type, unit of the release, factor from release unit to SI)
MODALITY_UNITS = {
    "eeg": ("eeg", "µV", 1e-6),
    "eog": ("eog", "µV", 1e-6),
    "emg": ("emg", "µV", 1e-6),
    "ecg": ("ecg", "µV", 1e-6),
    # The DEAP release stores skin *resistance* in Ohm; to_raw keeps Ohm and marks the unit.
    "gsr": ("gsr", "Ohm", 1.0),
    "resp": ("resp", "a.u.", 1.0),
    "ppg": ("bio", "a.u.", 1.0),
    "temp": ("temperature", "°C", 1.0),
}
