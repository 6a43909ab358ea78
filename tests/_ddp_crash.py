"""``physiosync`` under torchrun, with rank 1 dying at its 4th pre-training step (a test aid)."""

import os
import sys

import physiosync.training.engine as engine
from physiosync.cli import main

if os.environ.get("RANK") == "1":
    _real_loss = engine.pretrain_loss
    _calls = []

    def _dying_loss(*args, **kwargs):
        _calls.append(1)
        if len(_calls) == 4:
            os._exit(7)  # as if killed or out of memory
        return _real_loss(*args, **kwargs)

    engine.pretrain_loss = _dying_loss

sys.exit(main(sys.argv[1:]))
