"""Placeholder: the DREAMER reader is being written (replace this whole file)."""


class DREAMER:  # pragma: no cover - placeholder
    def __init__(self, *args, **kwargs):
        raise NotImplementedError


def make_dreamer_mat(*args, **kwargs):  # pragma: no cover - placeholder
    raise NotImplementedError
