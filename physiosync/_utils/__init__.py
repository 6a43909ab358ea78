"""Private helpers shared by every layer: checks, atomic writes, devices and seeds.

Nothing here imports another physiosync module except :mod:`physiosync.exceptions`.
"""

from .checks import check_option
from .device import flush_denormals, resolve_device
from .io import atomic_create, atomic_open, atomic_path, atomic_write, fsync_dir
from .random import derive_seed, fingerprint, set_random_seeds

__all__ = ["check_option", "resolve_device", "flush_denormals", "atomic_write", "atomic_create",
           "atomic_open", "atomic_path", "fsync_dir", "derive_seed", "fingerprint",
           "set_random_seeds"]
