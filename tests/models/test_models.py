"""Tests of physiosync.models: shapes, exact parameter counts, hygiene and errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from physiosync.exceptions import PhysioSyncError
from physiosync.models import (
    CMCAHead, HierarchicalFusionHead, Projector, ShapeError, SignalEncoder,
)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def expected_encoder_params(c, t, d, depth=3, n_prompts=0):
    """The reference's parameter count without its dead parameters."""
    return 4 * c * t * d + 6 * d + 6 * d + depth * (12 * d * d + 14 * d + n_prompts * d) + 2 * d


# (name, args, kwargs) for every encoder of the reference (DREAMER ECG: 256 Hz -> 2 x 256).
ENCODERS = [
    ("deap_eeg_1s", (32, 128, 128), {"n_prompts": 2, "dropout": 0.2}),
    ("deap_gsr_1s", (1, 128, 128), {}),
    ("deap_gsr_5s", (1, 640, 640), {}),
    ("dreamer_eeg_1s", (14, 128, 128), {"n_prompts": 2, "dropout": 0.2}),
    ("dreamer_ecg_1s", (2, 256, 128), {}),
]


@pytest.fixture(scope="module")
def eeg5():
    torch.manual_seed(0)
    return SignalEncoder(32, 640, 640, n_prompts=2, dropout=0.2)


@pytest.mark.parametrize("name,args,kwargs", ENCODERS, ids=[e[0] for e in ENCODERS])
def test_encoder_shapes_and_counts(name, args, kwargs):
    torch.manual_seed(0)
    enc = SignalEncoder(*args, **kwargs)
    c, t, d = args
    assert enc.out_dim == 4 * d
    assert n_params(enc) == expected_encoder_params(c, t, d, n_prompts=kwargs.get("n_prompts", 0))
    enc.eval()
    x = torch.randn(3, c, t)
    out = enc(x)
    assert out.shape == (3, 4 * d) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert torch.equal(enc(x.unsqueeze(1)), out)  # (B, 1, C, T) is accepted
    assert enc.tokens(x).shape == (3, 4, d)


def test_reference_parameter_counts(eeg5):
    assert n_params(SignalEncoder(32, 128, 128, n_prompts=2)) == 2_694_912
    assert n_params(SignalEncoder(1, 128, 128)) == 662_528
    assert n_params(eeg5) == 67_214_080
    # BatchNorm running statistics are buffers, not parameters.
    assert n_params(eeg5.embed) + n_params(eeg5.embed_norm) == 52_432_640


def test_eeg_5s_forward(eeg5):
    eeg5.eval()
    with torch.no_grad():
        out = eeg5(torch.randn(2, 1, 32, 640))
    assert out.shape == (2, 2560) and torch.isfinite(out).all()


def test_factorised_embedding(eeg5):
    torch.manual_seed(0)
    fact = SignalEncoder(32, 640, 640, n_prompts=2, embedding="factorised")
    emb = n_params(fact.embed) + n_params(fact.embed_norm)
    dense = n_params(eeg5.embed) + n_params(eeg5.embed_norm)
    # k*(T+1) + 4*C*k*D + 6*D with k = 16
    assert emb == 16 * 641 + 4 * 32 * 16 * 640 + 6 * 640 == 1_324_816
    assert dense > 10 * emb
    assert n_params(fact) == 16_106_256
    # Everything after the embedding is identical.
    assert n_params(fact) - emb == n_params(eeg5) - dense
    fact.eval()
    with torch.no_grad():
        assert fact(torch.randn(2, 32, 640)).shape == (2, 2560)

    small = SignalEncoder(32, 128, 128, n_prompts=2, embedding="factorised", factor_dim=8)
    assert n_params(small.embed) + n_params(small.embed_norm) == 8 * 129 + 4 * 32 * 8 * 128 + 6 * 128
    assert small(torch.randn(4, 32, 128)).shape == (4, 512)


def test_factorised_embedding_is_channel_major():
    # Channel c's temporal coefficients must land in columns [c*k, (c+1)*k).
    enc = SignalEncoder(3, 16, 8, embedding="factorised", factor_dim=2)
    x = torch.zeros(1, 3, 16)
    x[0, 1] = torch.randn(16)
    coeffs = enc.embed.temporal(x).flatten(1)
    assert torch.count_nonzero(coeffs[0, :2]) == 0 and torch.count_nonzero(coeffs[0, 4:]) == 0


def test_spectral_embedding():
    torch.manual_seed(0)
    spec = SignalEncoder(32, 640, 32, embedding="spectral", factor_dim=16, segment=32)
    # k*(L+1) + 4*C*k*D + 6*D with k = 16, L = 32
    assert n_params(spec.embed) + n_params(spec.embed_norm) == 16 * 33 + 4 * 32 * 16 * 32 + 6 * 32
    spec.eval()
    with torch.no_grad():
        out = spec(torch.randn(2, 32, 640))
    assert out.shape == (2, 128) and torch.isfinite(out).all()
    # A segment longer than the window is cut to the window; a ragged tail is dropped.
    short = SignalEncoder(1, 20, 8, embedding="spectral", segment=32)
    assert short.embed.segment == 20
    assert SignalEncoder(2, 70, 8, embedding="spectral", segment=32).eval()(
        torch.randn(3, 2, 70)).shape == (3, 32)


def test_spectral_embedding_is_phase_invariant_and_channel_major():
    # Per-channel log energies: a circular shift by whole segments leaves them unchanged
    # (a linear embedding would change), and channel c lands in columns [c*k, (c+1)*k).
    torch.manual_seed(0)
    enc = SignalEncoder(3, 64, 8, embedding="spectral", factor_dim=2, segment=16)
    x = torch.randn(1, 3, 64)
    a, _ = enc.embed(x)
    b, _ = enc.embed(torch.roll(x, 16, dims=-1))
    assert torch.allclose(a, b, atol=1e-5)
    x2 = x.clone()
    x2[0, 1] *= 3.0  # more power on channel 1 only
    segs = lambda v: v.reshape(1, 3, 4, 16)  # noqa: E731
    e1 = enc.embed.temporal(segs(x)).square().mean(2).log().flatten(1)
    e2 = enc.embed.temporal(segs(x2)).square().mean(2).log().flatten(1)
    diff = (e2 - e1)[0]
    assert torch.allclose(diff[2:4], torch.full((2,), 2 * math.log(3.0)), atol=1e-4)
    assert torch.allclose(diff[:2], torch.zeros(2)) and torch.allclose(diff[4:], torch.zeros(2))


def test_dropout_off_in_eval_on_in_train():
    torch.manual_seed(1)
    enc = SignalEncoder(4, 32, 16, n_prompts=2, dropout=0.5)
    x = torch.randn(6, 4, 32)
    enc.eval()
    assert torch.equal(enc(x), enc(x))
    enc.train()
    assert not torch.equal(enc(x), enc(x))
    assert any(isinstance(m, nn.Dropout) and m.p == 0.5 for m in enc.modules())

    proj = Projector(64, dims=(32, 32, 16))
    h = torch.randn(6, 64)
    proj.eval()
    assert torch.equal(proj(h), proj(h))
    proj.train()
    assert not torch.equal(proj(h), proj(h))


def test_prompts_are_per_block_and_dropped():
    torch.manual_seed(2)
    enc = SignalEncoder(4, 32, 16, depth=3, n_prompts=2)
    prompts = [b.prompt for b in enc.blocks]
    assert all(p.shape == (2, 16) for p in prompts)
    assert len({id(p) for p in prompts}) == 3
    assert not torch.equal(prompts[0], prompts[1])

    seen = []
    hooks = [b.attn.register_forward_hook(lambda m, i, o: seen.append(("attn", i[0].shape[1])))
             for b in enc.blocks]
    hooks += [b.register_forward_hook(lambda m, i, o: seen.append(("block", o.shape[1])))
              for b in enc.blocks]
    enc.eval()
    x = torch.randn(2, 4, 32)
    out = enc(x)
    for h in hooks:
        h.remove()
    assert [s for s in seen if s[0] == "attn"] == [("attn", 6)] * 3
    assert [s for s in seen if s[0] == "block"] == [("block", 4)] * 3
    # The prompts influence the output.
    with torch.no_grad():
        enc.blocks[1].prompt.add_(torch.randn(2, 16))  # not a constant: LayerNorm removes shifts
    assert not torch.allclose(enc(x), out)

    plain = SignalEncoder(4, 32, 16, n_prompts=0)
    assert all(b.prompt is None for b in plain.blocks)
    assert not any("prompt" in name for name, _ in plain.named_parameters())


def test_initialisation():
    torch.manual_seed(3)
    enc = SignalEncoder(8, 64, 32, n_prompts=2)
    for module in enc.modules():
        if isinstance(module, nn.Linear):
            assert module.weight.abs().max() <= 0.04 + 1e-7
            assert 0.012 < module.weight.std() < 0.024
            if module.bias is not None:
                assert torch.count_nonzero(module.bias) == 0
        elif isinstance(module, (nn.LayerNorm, nn.BatchNorm1d)):
            assert torch.all(module.weight == 1) and torch.all(module.bias == 0)
    for block in enc.blocks:
        assert torch.all(block.gamma1 == 0.1) and torch.all(block.gamma2 == 0.1)
        assert torch.count_nonzero(block.attn.q_bias) == 0
        assert 0 < block.prompt.abs().max() <= 0.04 + 1e-7
    for token in (enc.cls_token, enc.type_embed, enc.pos_embed):
        assert 0 < token.abs().max() <= 0.04 + 1e-7


def test_seed_determinism():
    x = torch.randn(3, 4, 32)
    outs, states = [], []
    for _ in range(2):
        torch.manual_seed(123)
        enc = SignalEncoder(4, 32, 16, n_prompts=2, embedding="factorised").eval()
        states.append(enc.state_dict())
        outs.append(enc(x))
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert torch.equal(outs[0], outs[1])


def test_backward_reaches_every_parameter():
    torch.manual_seed(4)
    enc_e = SignalEncoder(4, 32, 16, n_prompts=2, dropout=0.1)
    enc_p = SignalEncoder(1, 32, 16)
    proj = Projector(64, dims=(32, 32, 16))
    cm = CMCAHead(64, 24)
    head = HierarchicalFusionHead(64, 64, 2, 2, 3, hidden=(16, 8))
    x_e, x_p = torch.randn(6, 4, 32), torch.randn(6, 1, 32)
    h_e, h_p = enc_e(x_e), enc_p(x_p)
    e, p = cm(h_e, h_p)
    s_e, s_p = h_e.view(3, 2, 64), h_p.view(3, 2, 64)
    logits = head([h_e[:3], h_p[:3]], [s_e, s_p])
    loss = proj(h_e).square().mean() + (e * p).mean() + logits.logsumexp(1).mean()
    loss.backward()
    for module in (enc_e, enc_p, proj, cm, head):
        for name, param in module.named_parameters():
            assert param.grad is not None, name
            assert torch.isfinite(param.grad).all(), name
            assert param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_cpu(dtype):
    torch.manual_seed(5)
    enc = SignalEncoder(4, 32, 16, n_prompts=2).eval()
    head = HierarchicalFusionHead(64, 64, 1, 1, 2).eval()
    x = torch.randn(4, 4, 32)
    with torch.autocast("cpu", dtype=dtype):
        h = enc(x)
        logits = head([h], [h.unsqueeze(1)])
    assert torch.isfinite(h).all() and torch.isfinite(logits).all()
    assert torch.allclose(h.float(), enc(x), atol=0.1)


def test_encoder_shape_errors():
    enc = SignalEncoder(32, 128, 16)
    with pytest.raises(ShapeError, match=r"\(batch, 32, 128\).*got \(8, 31, 128\)"):
        enc(torch.randn(8, 31, 128))
    for bad in [(8, 32, 127), (32, 128), (8, 2, 32, 128), (8, 1, 1, 32, 128), (0, 32, 128)]:
        with pytest.raises(ShapeError, match=r"expected input of shape"):
            enc(torch.randn(*bad))
    with pytest.raises(ValueError):  # ShapeError is also a ValueError
        enc(torch.randn(2, 31, 128))


def test_encoder_bad_arguments():
    with pytest.raises(PhysioSyncError, match="divisible"):
        SignalEncoder(4, 32, 18, n_heads=4)
    with pytest.raises(PhysioSyncError, match="embedding"):
        SignalEncoder(4, 32, 16, embedding="dense")
    with pytest.raises(PhysioSyncError, match="dropout"):
        SignalEncoder(4, 32, 16, dropout=1.0)
    with pytest.raises(PhysioSyncError, match="n_chans"):
        SignalEncoder(0, 32, 16)


def test_projector():
    assert n_params(Projector(512)) == 11_023_360 == 4096 * 128 + 10_499_072
    assert n_params(Projector(2560)) == 13_120_512
    proj = Projector(512)
    assert not any(isinstance(m, (nn.ReLU, nn.GELU)) for m in proj.modules())
    assert sum(isinstance(m, nn.Dropout) for m in proj.modules()) == 2
    proj.eval()
    assert proj(torch.randn(3, 512)).shape == (3, 4096)
    relu = Projector(512, activation="relu")
    assert n_params(relu) == n_params(proj)
    assert sum(isinstance(m, nn.ReLU) for m in relu.modules()) == 2
    gelu = Projector(64, dims=(8, 4), activation=nn.GELU)
    assert sum(isinstance(m, nn.GELU) for m in gelu.modules()) == 1
    with pytest.raises(PhysioSyncError, match="activation"):
        Projector(64, activation="tanh")
    with pytest.raises(ShapeError, match=r"\(batch, 512\)"):
        proj(torch.randn(3, 511))


def test_cmca_head():
    head = CMCAHead(512)
    assert n_params(head) == 527_360
    assert n_params(CMCAHead(2560)) == 2_624_512
    e, p = head(torch.randn(4, 512), torch.randn(4, 512))
    assert e.shape == p.shape == (4, 1024)
    # One shared Linear + BN: feeding the same input through either slot agrees.
    head.eval()
    x = torch.randn(4, 512)
    e, p = head(x, x)
    assert torch.equal(e, p)
    with pytest.raises(ShapeError):
        head(torch.randn(4, 512), torch.randn(4, 256))


@pytest.mark.parametrize("kwargs,n_classes,count,in_features", [
    ({"long_dim": 2560, "short_dim": 512, "n_modalities": 2, "n_sub": 5}, 2, 2_661_766, 10_240),
    ({"long_dim": 2560, "short_dim": 512, "n_modalities": 2, "n_sub": 5}, 4, 2_668_172, 10_240),
    ({"long_dim": 0, "short_dim": 512, "n_modalities": 2, "n_sub": 1, "use_long": False},
     2, 297_348, 1024),
    ({"long_dim": 0, "short_dim": 512, "n_modalities": 2, "n_sub": 1, "use_long": False},
     4, 298_632, 1024),
])
def test_fusion_head_counts(kwargs, n_classes, count, in_features):
    head = HierarchicalFusionHead(n_classes=n_classes, **kwargs)
    assert n_params(head) == count
    assert head.in_features == in_features


def test_fusion_head_deap_forward():
    torch.manual_seed(6)
    head = HierarchicalFusionHead(2560, 512, 2, 5, 4)
    longs = [torch.randn(3, 2560) for _ in range(2)]
    shorts = [torch.randn(3, 5, 512) for _ in range(2)]
    assert head(longs, shorts).shape == (3, 4)
    no_gate = HierarchicalFusionHead(2560, 512, 2, 5, 4, gate=False)
    assert no_gate.long_probe is None and no_gate.short_probe is None
    assert n_params(no_gate) == 2_668_172 - (2560 * 4 + 4) - (512 * 4 + 4)
    dreamer = HierarchicalFusionHead(0, 512, 2, 1, 2, use_long=False)
    assert dreamer(None, [torch.randn(3, 1, 512), torch.randn(3, 1, 512)]).shape == (3, 2)
    short_only_5s = HierarchicalFusionHead(2560, 512, 2, 5, 2, use_short=False)
    assert short_only_5s.in_features == 5120
    assert short_only_5s(longs, None).shape == (3, 2)


def test_fusion_head_order_and_gates():
    torch.manual_seed(7)
    n_classes = 3
    head = HierarchicalFusionHead(6, 4, 2, 2, n_classes)
    head.classifier = nn.Identity()  # expose the concatenated, gated features
    longs = [torch.randn(5, 6) for _ in range(2)]
    shorts = [torch.randn(5, 2, 4) for _ in range(2)]
    feats = head(longs, shorts)
    assert feats.shape == (5, head.in_features) == (5, 2 * (6 + 2 * 4))

    def conf(f, probe):
        return torch.softmax(probe(f), dim=-1).max(dim=-1, keepdim=True).values

    expected = []
    for m in range(2):
        expected.append(longs[m] * conf(longs[m], head.long_probe))
        for k in range(2):
            expected.append(shorts[m][:, k] * conf(shorts[m][:, k], head.short_probe))
    assert torch.allclose(feats, torch.cat(expected, dim=1), atol=1e-6)
    c = conf(longs[0], head.long_probe)
    assert torch.all(c >= 1 / n_classes) and torch.all(c <= 1)

    raw = HierarchicalFusionHead(6, 4, 2, 2, n_classes, gate=False)
    raw.classifier = nn.Identity()
    order = [longs[0], shorts[0].flatten(1), longs[1], shorts[1].flatten(1)]
    assert torch.equal(raw(longs, shorts), torch.cat(order, dim=1))


def test_fusion_head_dropout_eval():
    torch.manual_seed(8)
    head = HierarchicalFusionHead(8, 4, 1, 2, 2, hidden=(16, 16), dropout=0.5)
    longs, shorts = [torch.randn(6, 8)], [torch.randn(6, 2, 4)]
    head.eval()
    assert torch.equal(head(longs, shorts), head(longs, shorts))
    head.train()
    assert not torch.equal(head(longs, shorts), head(longs, shorts))


def test_fusion_head_errors():
    head = HierarchicalFusionHead(8, 4, 2, 3, 2)
    longs = [torch.randn(2, 8), torch.randn(2, 8)]
    shorts = [torch.randn(2, 3, 4), torch.randn(2, 3, 4)]
    with pytest.raises(ShapeError, match="list of 2 tensors"):
        head(longs[:1], shorts)
    with pytest.raises(ShapeError, match="list of 2 tensors"):
        head(None, shorts)
    with pytest.raises(ShapeError, match=r"short_feats\[1\] expected shape \(batch, 3, 4\)"):
        head(longs, [shorts[0], torch.randn(2, 2, 4)])
    with pytest.raises(ShapeError, match=r"long_feats\[0\]"):
        head([torch.randn(2, 7), longs[1]], shorts)
    with pytest.raises(ShapeError, match="batch size"):
        head([torch.randn(3, 8), longs[1]], shorts)
    short_only = HierarchicalFusionHead(8, 4, 2, 3, 2, use_long=False)
    with pytest.raises(PhysioSyncError, match="use_long=False"):
        short_only(longs, shorts)
    with pytest.raises(PhysioSyncError, match="use_long and use_short"):
        HierarchicalFusionHead(8, 4, 2, 3, 2, use_long=False, use_short=False)
    with pytest.raises(PhysioSyncError, match="n_classes"):
        HierarchicalFusionHead(8, 4, 2, 3, 1)


@pytest.mark.gpu
def test_cuda_float16_autocast():
    torch.manual_seed(9)
    dev = torch.device("cuda")
    enc = SignalEncoder(32, 128, 128, n_prompts=2, dropout=0.2).to(dev)
    proj = Projector(512).to(dev)
    head = HierarchicalFusionHead(512, 512, 1, 1, 2).to(dev)
    x = torch.randn(8, 1, 32, 128, device=dev)
    with torch.autocast("cuda", dtype=torch.float16):
        h = enc(x)
        z = proj(h)
        logits = head([h], [h.unsqueeze(1)])
    assert torch.isfinite(h).all() and torch.isfinite(z).all() and torch.isfinite(logits).all()
    (z.float().square().mean() + logits.float().mean()).backward()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters())
