"""Dataset readers and format-faithful synthetic writers."""

from .base import ModalityInfo, Recording
from .deap import DEAP
from .dreamer import DREAMER

__all__ = ["DEAP", "DREAMER", "Recording", "ModalityInfo"]
