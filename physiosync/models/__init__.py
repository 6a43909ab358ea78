"""PhysioSync networks: the signal encoder and the heads built on it.

* :class:`SignalEncoder` -- one encoder per modality and time scale (method.md 3.1-3.4).
* :class:`Projector` -- the contrastive projector (method.md 3.4).
* :class:`CMCAHead` -- the shared cross-modal head of CM-CA (method.md 4.4).
* :class:`HierarchicalFusionHead` -- the gated long/short-term classifier (method.md 5).
* :class:`ShapeError` -- raised for tensors of the wrong shape.
"""

from .encoders import EMBEDDINGS, ShapeError, SignalEncoder, init_weights
from .heads import CMCAHead, HierarchicalFusionHead, Projector

__all__ = [
    "SignalEncoder", "Projector", "CMCAHead", "HierarchicalFusionHead", "ShapeError",
    "EMBEDDINGS", "init_weights",
]
