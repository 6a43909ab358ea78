"""``physiosync pretrain`` with the second half of the videos held out and measured (a
test aid).

The command line pre-trains on every cell; this wrapper keeps the later videos of every
subject out of training and passes them as the held-out cells, as a fold of held-out
videos does.
"""

import sys

import numpy as np

import physiosync.training.pretrain as pretrain_module
from physiosync.cli import main

_real = pretrain_module.pretrain_encoders


def _with_held_out(data, *args, **kwargs):
    held_out = np.zeros(np.shape(data.valid), dtype=bool)
    held_out[:, held_out.shape[1] // 2:] = True
    kwargs.update(allowed=~held_out, held_out=held_out)
    return _real(data, *args, **kwargs)


pretrain_module.pretrain_encoders = _with_held_out
sys.exit(main(sys.argv[1:]))
