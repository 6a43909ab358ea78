"""``python -m physiosync`` (and ``torchrun ... -m physiosync``): the command line."""

from .cli import main

raise SystemExit(main())
