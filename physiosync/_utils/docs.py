"""Shared docstring entries, filled in where ``%(name)s`` stands (MNE's ``fill_doc`` idea).

A parameter documented the same way in many functions is written once in
:data:`docdict`; a docstring names it as ``%(verbose)s`` on a line of its own, and any
further lines indented under it add what is particular to that function.
"""

from __future__ import annotations

import re

__all__ = ["docdict", "fill_doc"]

#: Parameter entries, numpydoc style, first line unindented, description indented 4.
docdict = {
    "verbose": """verbose : bool | str | int | None
    Log level during the call: ``None`` keeps the current level (see
    :func:`physiosync.set_log_level`), ``True`` is ``"info"``, ``False`` is
    ``"warning"``, or a :mod:`logging` level name or number. Progress bars are shown
    at ``"info"`` and below, on a terminal only.""",
}

_PLACEHOLDER = re.compile(r"^([ \t]*)%\((\w+)\)s[ \t]*$", re.M)


def fill_doc(obj):
    """Replace every ``%(name)s`` line of *obj*'s docstring by ``docdict[name]``.

    The entry takes the placeholder's indentation. An unknown name raises a
    :class:`KeyError` at import time, so a typo cannot ship.

    Parameters
    ----------
    obj : function | class
        What to document.

    Returns
    -------
    obj : function | class
        The same object, its ``__doc__`` filled.
    """
    doc = obj.__doc__
    if doc and "%(" in doc:
        def entry(match):
            indent, name = match.groups()
            return "\n".join(indent + line if line else line
                             for line in docdict[name].split("\n"))

        obj.__doc__ = _PLACEHOLDER.sub(entry, doc)
    return obj
