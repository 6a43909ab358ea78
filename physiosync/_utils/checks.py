"""Declarations of allowed parameter values, and their validation.

A parameter's rule is declared once as a constraint object (in the spirit of
scikit-learn's ``_param_validation``): :class:`Options` for a fixed set of values,
:class:`Interval` for a number between bounds, :class:`ListOf` for a list of such
values and :class:`MappingOf` for a mapping whose values follow a rule. A dataclass
lists the rules of its fields in a ``_parameter_constraints`` class variable and
calls :func:`validate_params` in ``__post_init__``; the configuration loader and the
command line read the same objects, so a value is refused with the same message
wherever it comes from.

Every check raises one line that names the parameter, by default an
:class:`~physiosync.exceptions.InvalidParameterError` (a :class:`PhysioSyncError` and a
:class:`ValueError`, as scikit-learn and MNE-Python raise). *label* turns the parameter's
name into the subject of the message (the configuration loader passes one that
writes ``config key 'pretrain.lr'``).
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Mapping
from dataclasses import fields

from ..exceptions import InvalidParameterError, PhysioSyncError
from .docs import fill_doc

__all__ = ["Constraint", "Options", "Interval", "ListOf", "MappingOf", "AnyOf", "check_option",
           "validate_params", "did_you_mean"]


def did_you_mean(value, options) -> str:
    """``" Did you mean 'x'?"`` for the option closest to *value*, or ``""``."""
    close = difflib.get_close_matches(str(value), [str(o) for o in options], n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def _quoted(values) -> str:
    return ", ".join(map(repr, values))


def _num(x) -> str:
    return str(x) if isinstance(x, numbers.Integral) else f"{x:g}"


class Constraint:
    """Base class of the constraints: a rule that a parameter's value must follow.

    Parameters
    ----------
    allow_none : bool
        Whether ``None`` is also accepted (for ``Optional`` fields).
    """

    def __init__(self, *, allow_none: bool = False):
        self.allow_none = allow_none

    def is_satisfied_by(self, value) -> bool:
        """Whether *value* follows the rule."""
        try:
            self.check(value, "value")
        except PhysioSyncError:
            return False
        return True

    @fill_doc
    def check(self, value, name: str, *, label=None, error=InvalidParameterError) -> None:
        """Raise *error* with a one-line message naming *name* unless *value* follows the rule.

        Parameters
        ----------
        value : object
            The value to check.
        name : str
            The parameter's name (``"lr"``, or ``"pretrain.lr"`` in a configuration).
        label : callable | None
            Turns *name* into the subject of the message; ``None`` uses *name* as is.
        %(error_class)s
        """
        if value is None and self.allow_none:
            return
        self._check(value, name, label or str, error)

    def _check(self, value, name, label, error):  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:
        """The rule in words, e.g. ``"an int in [1, 64]"`` (for help texts)."""
        text = self._describe()
        return f"{text} or None" if self.allow_none else text

    def _describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.describe()}>"


@fill_doc
class Options(Constraint):
    """One of a fixed set of values.

    Parameters
    ----------
    values : sequence
        The allowed values, in the order messages and help texts list them.
    %(allow_none)s
    """

    def __init__(self, values, *, allow_none: bool = False):
        super().__init__(allow_none=allow_none)
        self.values = tuple(values)

    def _check(self, value, name, label, error):
        try:
            ok = value in self.values
        except (TypeError, ValueError):  # e.g. an array, whose == is elementwise
            ok = False
        if ok:
            return
        hint = did_you_mean(value, self.values) if isinstance(value, str) else ""
        if label is str:
            raise error(f"Invalid {name} {value!r}; allowed values are "
                        f"{_quoted(self.values)}.{hint}")
        raise error(f"{label(name)}: invalid value {value!r}; allowed values are "
                    f"{_quoted(self.values)}.{hint}")

    def _describe(self) -> str:
        return f"one of {_quoted(self.values)}"


@fill_doc
class Interval(Constraint):
    """A number of a given type between two bounds.

    Parameters
    ----------
    type : {int, float}
        ``int`` accepts integers (not booleans); ``float`` accepts any real number
        (not booleans), NaN excepted.
    low, high : int | float | None
        The bounds; ``None`` leaves that side open.
    closed : {"both", "left", "right", "neither"}
        Which bounds are included.
    %(allow_none)s
    """

    _CLOSED = ("both", "left", "right", "neither")

    def __init__(self, type, low, high, *, closed: str = "both", allow_none: bool = False):
        super().__init__(allow_none=allow_none)
        if type not in (int, float):
            raise TypeError(f"Interval type must be int or float, got {type!r}.")
        check_option("closed", closed, self._CLOSED)
        self.type, self.low, self.high, self.closed = type, low, high, closed

    @property
    def low_inclusive(self) -> bool:
        return self.closed in ("both", "left")

    @property
    def high_inclusive(self) -> bool:
        return self.closed in ("both", "right")

    def _type_ok(self, value) -> bool:
        if isinstance(value, bool):
            return False
        if self.type is int:
            return isinstance(value, numbers.Integral)
        return isinstance(value, numbers.Real) and not math.isnan(value)

    def _check(self, value, name, label, error):
        if not self._type_ok(value):
            what = "an integer" if self.type is int else "a number"
            raise error(f"{label(name)} must be {what}, got {value!r}.")
        lo, hi = self.low, self.high
        lo_ok = lo is None or (value >= lo if self.low_inclusive else value > lo)
        hi_ok = hi is None or (value <= hi if self.high_inclusive else value < hi)
        if lo_ok and hi_ok:
            return
        # Name the bound that was crossed; for fractions (high <= 1) name both.
        if lo is not None and hi is not None and hi <= 1:
            bounds = f"{self._low_text()} and {self._high_text()}"
        else:
            bounds = self._low_text() if not lo_ok else self._high_text()
        raise error(f"{label(name)} must be {bounds}, got {value!r}.")

    def _low_text(self) -> str:
        return (">= " if self.low_inclusive else "> ") + _num(self.low)

    def _high_text(self) -> str:
        return ("<= " if self.high_inclusive else "< ") + _num(self.high)

    def _describe(self) -> str:
        what = "an int" if self.type is int else "a float"
        if self.low is None and self.high is None:
            return what
        if self.low is None:
            return f"{what} {self._high_text()}"
        if self.high is None:
            return f"{what} {self._low_text()}"
        left = "[" if self.low_inclusive else "("
        right = "]" if self.high_inclusive else ")"
        return f"{what} in {left}{_num(self.low)}, {_num(self.high)}{right}"


@fill_doc
class ListOf(Constraint):
    """A list (or another sequence) of values of one type, each following an optional rule.

    Parameters
    ----------
    elem_type : type
        Type of the elements (``int``, ``float`` or ``str``).
    elem_constraint : Constraint | None
        Rule of every element (e.g. an :class:`Interval`).
    min_len, max_len : int | None
        Bounds of the length (``None``: unbounded).
    %(allow_none)s
    """

    def __init__(self, elem_type, elem_constraint=None, min_len=None, max_len=None, *,
                 allow_none: bool = False):
        super().__init__(allow_none=allow_none)
        self.elem_type, self.elem_constraint = elem_type, elem_constraint
        self.min_len, self.max_len = min_len, max_len

    def _size_text(self) -> str:
        """``"3 elements"``, ``"0 to 8 elements"``, ``"at least 1 element"``."""
        lo, hi = self.min_len or 0, self.max_len
        if hi is None:
            return f"at least {lo} element{'' if lo == 1 else 's'}"
        return f"{lo} element{'' if lo == 1 else 's'}" if lo == hi else f"{lo} to {hi} elements"

    def _elem_name(self) -> str:
        return {int: "int", float: "float", str: "str"}.get(self.elem_type,
                                                             self.elem_type.__name__)

    def check_length(self, value, name: str, *, label=None, error=InvalidParameterError) -> None:
        """Check that *value* is a sequence of an allowed length (not its elements)."""
        label = label or str
        # any sequence (a list, a tuple, an array), but not a string or a mapping
        if isinstance(value, (str, bytes, dict)) or not (
                hasattr(value, "__len__") and hasattr(value, "__getitem__")):
            raise error(f"{label(name)} must be a list, got {value!r}.")
        n = len(value)
        if (self.min_len is not None and n < self.min_len) or (
                self.max_len is not None and n > self.max_len):
            raise error(f"{label(name)} must hold {self._size_text()}, got {n}.")

    def _check(self, value, name, label, error):
        self.check_length(value, name, label=label, error=error)
        for i, item in enumerate(value):
            item_name = f"{name}[{i}]"
            if isinstance(item, (list, tuple, dict)):
                raise error(f"{label(item_name)} must be a single {self._elem_name()}, "
                            f"got {item!r}.")
            if self.elem_type is str and not isinstance(item, str):
                raise error(f"{label(item_name)} must be a string, got {item!r}.")
            if self.elem_constraint is not None:
                self.elem_constraint.check(item, item_name, label=label, error=error)

    def _describe(self) -> str:
        elems = (self.elem_constraint.describe() if self.elem_constraint is not None
                 else f"a {self._elem_name()}")
        return f"a list of {self._size_text()}, each {elems}"


@fill_doc
class AnyOf(Constraint):
    """A value that follows at least one of several rules (e.g. an int or ``"all"``).

    Parameters
    ----------
    *constraints : Constraint
        The rules, in the order the message lists them.
    %(allow_none)s
    """

    def __init__(self, *constraints: Constraint, allow_none: bool = False):
        super().__init__(allow_none=allow_none)
        self.constraints = constraints

    def _check(self, value, name, label, error):
        if any(c.is_satisfied_by(value) for c in self.constraints):
            return
        subject = name if label is str else label(name)
        raise error(f"{subject} must be {self._describe()}, got {value!r}.")

    def _describe(self) -> str:
        return " or ".join(c.describe() for c in self.constraints)


@fill_doc
class MappingOf(Constraint):
    """A mapping from strings to values that follow one rule.

    Parameters
    ----------
    value_constraint : Constraint
        Rule of every value.
    %(allow_none)s
    """

    def __init__(self, value_constraint: Constraint, *, allow_none: bool = False):
        super().__init__(allow_none=allow_none)
        self.value_constraint = value_constraint

    def _check(self, value, name, label, error):
        if not isinstance(value, Mapping):
            raise error(f"{label(name)} must be a mapping, got {value!r}.")
        for key, item in value.items():
            self.value_constraint.check(item, f"{name}.{key}", label=label, error=error)

    def _describe(self) -> str:
        return f"a mapping whose values are each {self.value_constraint.describe()}"


def check_option(name: str, value, allowed) -> None:
    """Raise an :class:`~physiosync.exceptions.InvalidParameterError` naming *name* unless
    *value* is one of *allowed*.

    The message reads ``Invalid optimizer 'sgd'; allowed values are 'adam', 'adamw'.``
    (with a suggestion when a value is close).
    """
    Options(allowed).check(value, name)


@fill_doc
def validate_params(obj, *, error=InvalidParameterError) -> None:
    """Check every field of a dataclass instance against its ``_parameter_constraints``.

    Parameters
    ----------
    obj : dataclass instance
        Its class declares ``_parameter_constraints: ClassVar[dict]``, mapping field
        names to :class:`Constraint` objects; fields not listed are not checked.
    %(error_class)s

    Raises
    ------
    InvalidParameterError
        For the first field whose value breaks its rule, naming the field (also a
        :class:`ValueError`), unless *error* names another class.
    """
    constraints = type(obj)._parameter_constraints
    for f in fields(obj):
        if f.name in constraints:
            constraints[f.name].check(getattr(obj, f.name), f.name, error=error)
