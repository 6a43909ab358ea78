"""``python -m physiosync.cli``: the command line, as ``python -m physiosync``."""

from . import main

raise SystemExit(main())
