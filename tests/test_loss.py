"""Losses against independent, straightforward computations, and across two processes (gloo, CPU)."""

from __future__ import annotations

import math
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from focus_arms import MODE_OVERRIDES
from focusclip.loss import ClipLoss, FocusCLIPLoss, clip_loss, nt_xent


def reference_nt_xent(a: torch.Tensor, b: torch.Tensor, t: float) -> float:
    """NT-Xent as docs/method.md defines it, written out with loops in float64."""
    u = [x / x.norm() for x in torch.cat([a, b]).double()]
    n2 = len(u)
    n = n2 // 2
    total = 0.0
    for i in range(n2):
        pos = i + n if i < n else i - n
        s = [float(u[i] @ u[k]) / t for k in range(n2)]
        denom = sum(math.exp(s[k]) for k in range(n2) if k != i)
        total += -math.log(math.exp(s[pos]) / denom)
    return total / n2


def reference_clip(a: torch.Tensor, b: torch.Tensor, scale: float) -> float:
    a = torch.nn.functional.normalize(a.double(), dim=-1)
    b = torch.nn.functional.normalize(b.double(), dim=-1)
    n = len(a)
    logits = [[scale * float(a[i] @ b[j]) for j in range(n)] for i in range(n)]
    row = sum(-logits[i][i] + math.log(sum(math.exp(x) for x in logits[i])) for i in range(n)) / n
    col = sum(-logits[j][j] + math.log(sum(math.exp(logits[i][j]) for i in range(n))) for j in range(n)) / n
    return (row + col) / 2


@pytest.mark.parametrize("n,d,t", [(2, 3, 0.5), (5, 8, 0.5), (7, 16, 0.1)])
def test_nt_xent_matches_reference(n, d, t):
    g = torch.Generator().manual_seed(n * 100 + d)
    a, b = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    assert nt_xent(a, b, t).item() == pytest.approx(reference_nt_xent(a, b, t), rel=1e-5)


def test_nt_xent_is_symmetric_and_scale_invariant():
    a, b = torch.randn(6, 4), torch.randn(6, 4)
    assert nt_xent(a, b).item() == pytest.approx(nt_xent(b, a).item(), rel=1e-6)
    assert nt_xent(3 * a, 0.5 * b).item() == pytest.approx(nt_xent(a, b).item(), rel=1e-5)


def test_nt_xent_lower_for_aligned_pairs():
    a = torch.randn(8, 16)
    assert nt_xent(a, a + 0.01 * torch.randn(8, 16)) < nt_xent(a, torch.randn(8, 16))


def test_nt_xent_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        nt_xent(torch.randn(4, 3), torch.randn(5, 3))


@pytest.mark.parametrize("scale", [1.0, 14.3])
def test_clip_loss_matches_reference(scale):
    a, b = torch.randn(6, 5), torch.randn(6, 5)
    assert clip_loss(a, b, scale).item() == pytest.approx(reference_clip(a, b, scale), rel=1e-5)
    assert ClipLoss(gather=False)(a, b, torch.tensor(scale)).item() == pytest.approx(
        reference_clip(a, b, scale), rel=1e-5)


def _model_outputs(mode: str) -> dict[str, torch.Tensor]:
    """A tiny model's forward outputs with focus mode ``mode`` (random features when ``mode`` is None)."""
    if mode is None:
        return {k: torch.randn(5, 8) for k in ("image_features", "text_features", "roi_features")}
    import focusclip

    torch.manual_seed(0)
    model = focusclip.create_model("focusclip-tiny", **MODE_OVERRIDES[mode])
    with torch.no_grad():  # the mechanism away from its plain initial state, so the roi branch differs
        for p in model.focus.parameters():
            p.add_(0.1 * torch.randn_like(p))
    s = model.image_size
    out = model(torch.randn(5, 3, s, s), focusclip.get_tokenizer("focusclip-tiny")(["a b", "c", "d e", "f", "g"]),
                heatmap=torch.rand(5, 1, s, s))
    assert not torch.allclose(out["roi_features"], out["image_features"])
    return {k: v.detach() for k, v in out.items() if k.endswith("_features")}


@pytest.mark.parametrize("mode", [None, *MODE_OVERRIDES])
def test_focusclip_loss_weights_and_terms(mode):
    feats = _model_outputs(mode)
    out = FocusCLIPLoss(weights=(0.5, 2.0, 1.0))({**feats, "logit_scale": torch.tensor(10.0)})
    f = feats
    expected = {"roi_img": reference_nt_xent(f["roi_features"], f["image_features"], 0.5),
                "roi_txt": reference_nt_xent(f["roi_features"], f["text_features"], 0.5),
                "img_txt": reference_nt_xent(f["image_features"], f["text_features"], 0.5)}
    for k, v in expected.items():
        assert out[k].item() == pytest.approx(v, rel=1e-5)
    total = 0.5 * expected["roi_img"] + 2.0 * expected["roi_txt"] + expected["img_txt"]
    assert out["loss"].item() == pytest.approx(total, rel=1e-5)


def test_baseline_without_roi_uses_only_image_text():
    f = {"image_features": torch.randn(4, 8), "text_features": torch.randn(4, 8)}
    out = FocusCLIPLoss()(f)
    assert set(out) == {"loss", "img_txt"}
    assert out["loss"].item() == pytest.approx(reference_nt_xent(f["image_features"], f["text_features"], 0.5),
                                               rel=1e-5)


def test_clip_kind_uses_logit_scale():
    f = {"image_features": torch.randn(4, 8), "text_features": torch.randn(4, 8), "logit_scale": torch.tensor(7.0)}
    out = FocusCLIPLoss(name="clip")(f)
    assert out["loss"].item() == pytest.approx(reference_clip(f["image_features"], f["text_features"], 7.0),
                                               rel=1e-5)


def test_bad_weights_rejected():
    with pytest.raises(ValueError, match="pairs"):
        FocusCLIPLoss(weights={"img_txt": 1.0})


# ------------------------------------------------------------------ two processes vs one
N, D_IN, D = 8, 6, 5


def _problem():
    g = torch.Generator().manual_seed(0)
    x = {k: torch.randn(N, D_IN, generator=g) for k in ("image", "text", "roi")}
    heads = {k: torch.randn(D, D_IN, generator=g) for k in x}
    return x, heads


def _loss_and_grads(x, heads, kind):
    params = {k: w.clone().requires_grad_(True) for k, w in heads.items()}
    out = {f"{k}_features": x[k] @ params[k].T for k in x}
    out["logit_scale"] = torch.tensor(5.0)
    loss = FocusCLIPLoss(name=kind)(out)["loss"]
    loss.backward()
    return loss.detach(), {k: p.grad for k, p in params.items()}


def _worker(rank, world, port, kind, result_path):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        x, heads = _problem()
        # uneven shards: rank 0 gets 3 samples, rank 1 gets 5
        cut = 3
        local = {k: (v[:cut] if rank == 0 else v[cut:]) for k, v in x.items()}
        loss, grads = _loss_and_grads(local, heads, kind)
        for g in grads.values():  # what DistributedDataParallel does: average gradients over ranks
            dist.all_reduce(g)
            g /= world
        if rank == 0:
            torch.save({"loss": loss, "grads": grads}, result_path)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kind", ["ntxent", "clip"])
def test_two_processes_equal_one_process_on_the_global_batch(tmp_path, kind):
    result = tmp_path / "rank0.pt"
    mp.spawn(_worker, args=(2, _free_port(), kind, str(result)), nprocs=2, join=True)
    got = torch.load(result, weights_only=True)
    x, heads = _problem()
    loss, grads = _loss_and_grads(x, heads, kind)
    assert got["loss"].item() == pytest.approx(loss.item(), rel=1e-6)
    for k in grads:
        torch.testing.assert_close(got["grads"][k], grads[k], rtol=1e-5, atol=1e-6)
