"""Tests of physiosync.models.losses against loop-based re-computations of the reference's formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from physiosync.exceptions import PhysioSyncError
from physiosync.models.losses import cmca, nt_xent, pretrain_loss
from physiosync.models import ShapeError


def ref_nt_xent(a, b, t):
    """The reference's NT-Xent formula, written out with plain loops in float64."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    n = len(a)

    def direction(x, y):
        losses = []
        for i in range(n):
            num = math.exp(float(x[i] @ y[i]) / t)
            den = sum(math.exp(float(x[i] @ y[j]) / t) for j in range(n))
            den += sum(math.exp(float(x[i] @ x[j]) / t) for j in range(n) if j != i)
            losses.append(-math.log(num / den))
        return sum(losses) / n

    return direction(a, b) + direction(b, a)


def _pair(n, d, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g, dtype=dtype),
            torch.randn(n, d, generator=g, dtype=dtype))


@pytest.mark.parametrize("n", [1, 2, 5, 16])
@pytest.mark.parametrize("d", [3, 64])
@pytest.mark.parametrize("t", [0.07, 0.1, 0.5, 1.0])
def test_nt_xent_matches_loop_reference(n, d, t):
    a, b = _pair(n, d, seed=n * 100 + d)
    got = nt_xent(a, b, t)
    assert got.dtype == torch.float64 and got.ndim == 0
    assert got.item() == pytest.approx(ref_nt_xent(a, b, t), rel=1e-9, abs=1e-12)


def test_nt_xent_float32_matches_reference():
    a, b = _pair(8, 32, seed=3, dtype=torch.float32)
    got = nt_xent(a, b, 0.1)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(ref_nt_xent(a, b, 0.1), rel=1e-5)


def test_nt_xent_is_symmetric():
    a, b = _pair(6, 10, seed=4)
    assert torch.allclose(nt_xent(a, b, 0.2), nt_xent(b, a, 0.2), rtol=0, atol=1e-12)


def test_nt_xent_is_scale_invariant():
    a, b = _pair(6, 10, seed=5)
    assert torch.allclose(nt_xent(3.0 * a, 0.01 * b), nt_xent(a, b), atol=1e-12)


@pytest.mark.parametrize("n", [1, 3, 8])
def test_nt_xent_identical_rows_closed_form(n):
    # All similarities are 1: each anchor sees 2n - 1 equal terms.
    a = torch.ones(n, 4, dtype=torch.float64)
    assert nt_xent(a, a.clone(), 0.1).item() == pytest.approx(2 * math.log(2 * n - 1))


@pytest.mark.parametrize("n,t", [(2, 0.1), (5, 0.1), (8, 0.5), (8, 0.07)])
def test_nt_xent_one_hot_closed_form(n, t):
    # a == b, rows orthonormal: positive similarity 1, all negatives 0.
    a = torch.eye(n, 8, dtype=torch.float64)
    expected = 2 * -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2 * (n - 1)))
    assert nt_xent(a, a.clone(), t).item() == pytest.approx(expected, rel=1e-12)


def test_nt_xent_gradient_flows():
    a, b = _pair(6, 12, seed=6, dtype=torch.float32)
    a.requires_grad_(True)
    b.requires_grad_(True)
    nt_xent(a, b).backward()
    for x in (a, b):
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_nt_xent_autocast_cpu_is_finite(dtype):
    torch.manual_seed(0)
    lin = torch.nn.Linear(32, 64)
    a, b = torch.randn(16, 32), torch.randn(16, 32)
    full = nt_xent(lin(a), lin(b))
    with torch.autocast("cpu", dtype=dtype):
        za, zb = lin(a), lin(b)
        assert za.dtype == dtype
        loss = nt_xent(za, zb)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert loss.item() == pytest.approx(full.item(), rel=0.02)
    loss.backward()
    assert torch.isfinite(lin.weight.grad).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_nt_xent_computes_its_similarities_in_float32_under_autocast(dtype):
    # Under autocast the encoders' outputs are reduced-precision, but the loss of those
    # outputs must be the float32 loss of the same values: no bf16 matmul inside it.
    torch.manual_seed(1)
    lin = torch.nn.Linear(32, 64)
    a, b = torch.randn(16, 32), torch.randn(16, 32)
    with torch.autocast("cpu", dtype=dtype):
        za, zb = lin(a), lin(b)
        inside = nt_xent(za, zb, temperature=0.1)
        inside_cmca = cmca(torch.cat((za, zb)), torch.cat((zb, za)), temperature=0.1)
    outside = nt_xent(za.float(), zb.float(), temperature=0.1)
    outside_cmca = cmca(torch.cat((za, zb)).float(), torch.cat((zb, za)).float(),
                        temperature=0.1)
    assert inside.item() == outside.item()
    assert inside_cmca.item() == outside_cmca.item()
    # the control: the same similarities taken in reduced precision differ visibly
    u, v = F.normalize(za, dim=1), F.normalize(zb, dim=1)
    low = (u @ v.T).float() / 0.1
    high = (u.float() @ v.float().T) / 0.1
    assert (low - high).abs().max().item() > 1e-3


def test_nt_xent_half_inputs_with_small_temperature():
    # Half-precision logits at 1/t = 100: the -inf mask and float32 reduction keep it finite.
    a, b = _pair(32, 16, seed=7, dtype=torch.float32)
    loss = nt_xent(a.half(), b.half(), 0.01)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(nt_xent(a, b, 0.01).item(), rel=0.01)


def test_nt_xent_errors():
    a = torch.randn(4, 8)
    with pytest.raises(ShapeError, match=r"\(4, 8\) and \(4, 7\)"):
        nt_xent(a, torch.randn(4, 7))
    with pytest.raises(ShapeError):
        nt_xent(a, torch.randn(5, 8))
    with pytest.raises(ShapeError):
        nt_xent(torch.randn(8), torch.randn(8))
    with pytest.raises(ShapeError):
        nt_xent(torch.randn(0, 8), torch.randn(0, 8))
    for bad_t in (0.0, -0.1, float("nan")):
        with pytest.raises(PhysioSyncError, match="temperature"):
            nt_xent(a, a, bad_t)
    assert issubclass(ShapeError, ValueError) and issubclass(ShapeError, PhysioSyncError)


@pytest.mark.parametrize("b", [1, 3, 8])
@pytest.mark.parametrize("t", [0.1, 0.3])
def test_cmca_cross_subject_swap_matches_hand_built(b, t):
    e, p = _pair(2 * b, 9, seed=10 + b)
    e_sw = torch.cat((p[:b], e[b:]))  # e' = [p[:B]; e[B:]]
    p_sw = torch.cat((e[:b], p[b:]))  # p' = [e[:B]; p[B:]]
    expected = (0.5 * ref_nt_xent(e_sw[:b], e_sw[b:], t)
                + 0.5 * ref_nt_xent(p_sw[:b], p_sw[b:], t))
    assert cmca(e, p, t).item() == pytest.approx(expected, rel=1e-9)
    assert cmca(e, p, t, variant="cross-subject").item() == pytest.approx(expected, rel=1e-9)


def test_cmca_cross_subject_never_pairs_same_row():
    # If EEG and PPS of each row are identical but the two groups are unrelated,
    # the cross-subject variant cannot exploit the same-row match.
    b = 4
    z = torch.eye(2 * b, 16, dtype=torch.float64)
    same_row = cmca(z, z.clone(), 0.1, variant="same-subject")
    cross = cmca(z, z.clone(), 0.1)
    assert same_row.item() < 0.01
    assert cross.item() > 1.0


def test_cmca_same_subject_variant():
    e, p = _pair(6, 5, seed=11)
    assert cmca(e, p, 0.2, variant="same-subject").item() == pytest.approx(
        ref_nt_xent(e, p, 0.2), rel=1e-9)


def test_cmca_gradient_and_errors():
    e, p = _pair(4, 6, seed=12, dtype=torch.float32)
    e.requires_grad_(True)
    cmca(e, p).backward()
    assert torch.isfinite(e.grad).all() and e.grad.abs().sum() > 0
    with pytest.raises(ShapeError, match="even number of rows"):
        cmca(torch.randn(5, 6), torch.randn(5, 6))
    with pytest.raises(ShapeError):
        cmca(torch.randn(4, 6), torch.randn(4, 5))
    with pytest.raises(PhysioSyncError, match="temperature"):
        cmca(e, p, temperature=0)
    with pytest.raises(PhysioSyncError, match="variant"):
        cmca(e, p, variant="both")


def test_pretrain_loss_combines_terms():
    g = torch.Generator().manual_seed(13)
    z_e, z_p = torch.randn(8, 32, generator=g), torch.randn(8, 32, generator=g)
    e, p = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    total, terms = pretrain_loss(z_e, z_p, e, p)
    l_e = nt_xent(z_e[:4], z_e[4:])
    l_p = nt_xent(z_p[:4], z_p[4:])
    l_c = cmca(e, p)
    assert total.item() == pytest.approx((0.5 * l_e + 0.5 * l_p + l_c).item(), rel=1e-6)
    assert set(terms) == {"temporal_eeg", "temporal_pps", "cmca", "total"}
    assert all(isinstance(v, float) for v in terms.values())
    assert terms["temporal_eeg"] == pytest.approx(l_e.item(), rel=1e-6)
    assert terms["cmca"] == pytest.approx(l_c.item(), rel=1e-6)
    assert terms["total"] == pytest.approx(total.item(), rel=1e-6)

    total_d, terms_d = pretrain_loss(z_e, z_p, e, p, weights=(0.5, 0.5, 1.0), temperature=0.1,
                                     cmca_temperature=None, cmca_variant="cross-subject")
    assert total_d.item() == total.item() and terms_d == terms  # the documented defaults

    total_w, terms_w = pretrain_loss(z_e, z_p, e, p, weights=(1.0, 2.0, 0.5),
                                     cmca_temperature=0.3, cmca_variant="same-subject")
    expected = l_e + 2 * l_p + 0.5 * cmca(e, p, 0.3, "same-subject")
    assert total_w.item() == pytest.approx(expected.item(), rel=1e-6)


def test_pretrain_loss_gradient_and_zero_weights():
    z_e = torch.randn(6, 8, requires_grad=True)
    z_p = torch.randn(6, 8, requires_grad=True)
    total, terms = pretrain_loss(z_e, z_p, None, None, weights=(0.5, 0.5, 0.0))
    assert set(terms) == {"temporal_eeg", "temporal_pps", "total"}
    total.backward()
    assert z_e.grad.abs().sum() > 0 and z_p.grad.abs().sum() > 0


def test_pretrain_loss_errors():
    z = torch.randn(6, 8)
    with pytest.raises(PhysioSyncError, match="input is None"):
        pretrain_loss(z, z, None, None)
    with pytest.raises(PhysioSyncError, match="weights"):
        pretrain_loss(z, z, z, z, weights=(0.0, 0.0, 0.0))
    with pytest.raises(PhysioSyncError, match="weights"):
        pretrain_loss(z, z, z, z, weights=(-1.0, 0.5, 1.0))
    with pytest.raises(PhysioSyncError, match="weights"):
        pretrain_loss(z, z, z, z, weights=(1.0, 1.0))
    with pytest.raises(ShapeError, match="even"):
        pretrain_loss(torch.randn(5, 8), z, z, z)
    with pytest.raises(PhysioSyncError, match="variant"):
        pretrain_loss(z, z, z, z, cmca_variant="nope")
    with pytest.raises(PhysioSyncError, match="temperature"):
        pretrain_loss(z, z, z, z, temperature=-1)
    with pytest.raises(PhysioSyncError, match="temperature"):
        pretrain_loss(z, z, z, z, cmca_temperature=0.0)


@pytest.mark.gpu
def test_losses_cuda_float16_autocast():
    dev = torch.device("cuda")
    lin = torch.nn.Linear(32, 64).to(dev)
    a, b = torch.randn(16, 32, device=dev), torch.randn(16, 32, device=dev)
    full = cmca(lin(a), lin(b), 0.07)
    with torch.autocast("cuda", dtype=torch.float16):
        loss = nt_xent(lin(a), lin(b), 0.07) + cmca(lin(a), lin(b), 0.07)
        part = cmca(lin(a), lin(b), 0.07)
    assert loss.device.type == "cuda" and torch.isfinite(loss)
    assert part.item() == pytest.approx(full.item(), rel=0.02)
