"""Comparing two training runs that differ only in floating-point rounding."""

from __future__ import annotations

#: Parameters whose gradient is zero in exact arithmetic: the bias of the Linear layer
#: that feeds the CM-CA head's batch norm (the norm subtracts any constant shift). Their
#: gradient is rounding noise, which Adam scales to steps of +-lr whatever its size, so
#: two runs that round differently move them differently; the norm's running mean
#: follows them. Nothing downstream depends on them (the feature checks show it).
GRADIENT_FREE = ("cmca_head.linear.bias", "cmca_head.norm.running_mean")


def assert_trained_alike(a: dict, b: dict, initial: dict, *, share: float = 1e-2) -> None:
    """State dicts *a* and *b*, trained from *initial*, differ by at most *share* of how
    far training moved each tensor (gradient-free tensors aside).

    Adam turns rounding-level gradient differences on near-zero gradients (units a ReLU
    shuts) into whole steps, so an element-wise tolerance would fail on a handful of
    elements; against the distance travelled the runs agree closely.
    """
    assert list(a) == list(b)
    for name in a:
        if name in GRADIENT_FREE or not a[name].is_floating_point():
            continue
        moved = (b[name] - initial[name]).norm()
        assert (a[name] - b[name]).norm() <= share * moved + 1e-6, name
