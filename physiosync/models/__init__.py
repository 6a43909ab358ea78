"""PhysioSync networks: the signal encoder and the heads built on it.

* :class:`SignalEncoder` -- one encoder per modality and time scale.
* :class:`Projector` -- the contrastive projector.
* :class:`CMCAHead` -- the shared cross-modal head of CM-CA.
* :class:`HierarchicalFusionHead` -- the gated long/short-term classifier.
* :class:`ShapeError` -- raised for tensors of the wrong shape.
"""

from .encoders import EMBEDDINGS, ShapeError, SignalEncoder, init_weights
from .heads import CMCAHead, HierarchicalFusionHead, Projector

__all__ = [
    "SignalEncoder", "Projector", "CMCAHead", "HierarchicalFusionHead", "ShapeError",
    "EMBEDDINGS", "init_weights",
]
