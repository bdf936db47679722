"""M3T: shapes, missing-data semantics, parameter groups, MoE routing, PEFT identity at init, task_loss."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from xrdata.errors import ValidationError
from xrdata.fed_training.config import MODALITIES, ModalitySpec, ModelConfig, TaskSpec, group_of
from xrdata.fed_training.model import (
    M3T,
    MixtureOfExperts,
    ModelOutput,
    decorrelation_loss,
    group_sizes,
    param_groups,
    set_trainable,
    task_loss,
)

# one modality of every kind, small: 4 series tokens, 2 audio tokens (15 log-mel frames in all), 2 depth frames
SPECS = (
    ModalitySpec("s", "series", 8, (3,), 2),
    ModalitySpec("a", "audio", 512, (), 256),
    ModalitySpec("d", "depth", 2, (8, 16), 1),
)
TASKS = (TaskSpec("act", ("sit", "walk", "run")), TaskSpec("score"))
TINY = ModelConfig(d_model=16, n_layers=1, n_heads=2, ffn_mult=2, dropout=0.0, n_mels=8, n_fft=64)


def build(seed: int = 0, specs: tuple[ModalitySpec, ...] = SPECS, **changes: Any) -> M3T:
    torch.manual_seed(seed)
    return M3T(dataclasses.replace(TINY, **changes), specs, TASKS).eval()


@functools.cache
def cached(**changes: Any) -> M3T:
    return build(**changes)


def batch(B: int = 3, seed: int = 1, specs: tuple[ModalitySpec, ...] = SPECS, p: float = 0.8
          ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    x = {m.name: torch.randn(B, m.steps, *m.shape, generator=g) for m in specs}
    present = {m.name: torch.rand(B, m.steps, generator=g) < p for m in specs}
    return x, present


def close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-6) -> None:
    # not torch.testing.assert_close: its first call imports torch.distributed (seconds)
    assert a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=atol), (a, b)


def same(a: ModelOutput, b: ModelOutput) -> bool:
    return all(torch.equal(a.outputs[t], b.outputs[t]) for t in a.outputs)


def test_output_shapes_for_every_kind_and_task() -> None:
    model = cached()
    x, present = batch(B=3)
    out = model(x, present)
    assert out.outputs["act"].shape == (3, 3) and out.outputs["score"].shape == (3,)
    assert out.aux_loss.shape == () and float(out.aux_loss) == 0.0 and out.expert_counts is None
    assert model.n_tokens == {"s": 4, "a": 2, "d": 2} and model.seq_len == 1 + 8
    for m in SPECS:
        tokens = model.encoders[m.name](x[m.name], present[m.name], 3)
        assert tokens.shape == (3, m.steps // m.patch, 16)


def test_default_sizes_run_every_modality_float16() -> None:
    torch.manual_seed(0)
    specs = tuple(MODALITIES.values())
    model = M3T(ModelConfig(), specs, TASKS)
    x, present = batch(B=2, specs=specs)
    x = {k: v.half() for k, v in x.items()}  # audio/eeg/depth may come as float16
    out = model(x, present)
    assert out.outputs["act"].shape == (2, 3) and out.outputs["score"].shape == (2,)
    assert 1e5 < sum(p.numel() for p in model.parameters()) < 1e6


@given(seed=st.integers(0, 2**16))
def test_token_mode_ignores_values_at_missing_steps(seed: int) -> None:
    model = cached()
    x, present = batch(seed=seed, p=0.5)
    g = torch.Generator().manual_seed(seed + 1)
    # values at absent steps (including in tokens that still count as present) never reach the output
    noisy = {m: torch.where(present[m].view(*present[m].shape, *[1] * (v.dim() - 2)), v,
                            100 * torch.randn(v.shape, generator=g)) for m, v in x.items()}
    assert same(model(x, present), model(noisy, present))


def test_token_mode_uses_missing_token_below_half_present() -> None:
    model = cached()
    enc = model.encoders["s"]
    x, present = batch(B=2)
    present["s"][:] = True
    present["s"][0, 0:2] = False  # token 0 of sample 0: 0/2 steps present -> missing
    present["s"][0, 2] = False  # token 1 of sample 0: 1/2 present -> kept (missing means fewer than half)
    tokens = enc(x["s"], present["s"], 2)
    assert torch.equal(tokens[0, 0], (enc.missing + enc.modality_emb).detach())
    assert not torch.equal(tokens[0, 1], tokens[0, 0])
    # present values matter
    x2 = {k: v.clone() for k, v in x.items()}
    x2["s"][0, 3] += 1.0
    assert not torch.equal(enc(x2["s"], present["s"], 2)[0, 1], tokens[0, 1])


@given(seed=st.integers(0, 2**16))
def test_token_mode_fills_a_series_gap_with_its_patch_mean(seed: int) -> None:
    model = cached()
    enc = model.encoders["s"]
    x, present = batch(B=2, seed=seed, p=0.6)
    filled = x["s"].clone()
    for b in range(2):
        for t in range(4):  # patches of 2 steps
            sl = slice(2 * t, 2 * t + 2)
            have = present["s"][b, sl]
            if have.any():
                filled[b, sl][~have] = x["s"][b, sl][have].mean(0)
    all_present = torch.ones_like(present["s"])
    kept = present["s"].reshape(2, 4, 2).any(-1)  # tokens with at least 1 of 2 steps: encoded, not the token
    close(enc(x["s"], present["s"], 2)[kept], enc(filled, all_present, 2)[kept], atol=1e-5)


def test_token_mode_sets_audio_frames_with_gaps_to_the_band_means() -> None:
    # a steady tone with a 20-sample hole: the hole's edges are clicks and its silence a power drop in the
    # frames that hold it; with those frames at the band means the tokens read like the intact tone
    model = cached()
    t = torch.arange(512) / 256.0  # the spec's 512 steps per 2 s window: 256 Hz
    tone = (0.05 * torch.sin(2 * torch.pi * 40.0 * t))[None]
    present = torch.ones(1, 512, dtype=torch.bool)
    present[0, 100:120] = False
    holed = torch.where(present, tone, 0.0)
    tok = model.encoders["a"].tokenizer
    intact = tok(tone)
    error = (tok(holed, present) - intact).abs().max()
    zero_fill_error = (tok(holed) - intact).abs().max()
    assert error < 0.05 * zero_fill_error, (error, zero_fill_error)


@given(gain_db=st.floats(-30.0, 30.0), seed=st.integers(0, 2**16))
def test_audio_tokens_ignore_the_level(gain_db: float, seed: int) -> None:
    # the band means are taken out per window: a louder talker, a nearer microphone or a hotter input gain
    # (a constant in log-mel) encodes the same
    x = torch.randn(1, 512, generator=torch.Generator().manual_seed(seed)) * 0.01
    tok = cached().encoders["a"].tokenizer
    close(tok(x * 10 ** (gain_db / 20)), tok(x), atol=1e-4)


def test_audio_tokens_see_across_their_boundaries() -> None:
    # a click just before the boundary between the two tokens changes the second token too (the convolutions
    # and the band means span the window; tokens encoded apart would leave it as it was)
    tok = cached().encoders["a"].tokenizer
    x = torch.randn(1, 512, generator=torch.Generator().manual_seed(0)) * 0.01
    clicked = x.clone()
    clicked[0, 250] = 1.0
    with torch.no_grad():
        diff = (tok(clicked) - tok(x)).abs().amax(-1)[0]  # (2,)
    assert float(diff[1]) > 1e-3, diff


def test_zero_mode_all_missing_equals_zero_input() -> None:
    model = cached(missing="zero")
    assert not any(name.endswith(".missing") for name, _ in model.named_parameters())
    x, present = batch()
    missing = dict(present, a=torch.zeros_like(present["a"]))
    zeros = dict(x, a=torch.zeros_like(x["a"]))
    all_present = dict(present, a=torch.ones_like(present["a"]))
    assert same(model(x, missing), model(zeros, all_present))
    assert not same(model(x, missing), model(x, all_present))


@pytest.mark.parametrize("mode", ["token", "zero"])
def test_absent_modality_is_all_missing(mode: str) -> None:
    model = cached(missing=mode)
    x, present = batch()
    for m in ("s", "a", "d"):
        absent = {k: v for k, v in x.items() if k != m}
        all_missing = dict(present, **{m: torch.zeros_like(present[m])})
        assert same(model(absent, present), model(x, all_missing)), m


def test_absent_modality_leaves_its_tokenizer_untouched() -> None:
    model = build()
    x, present = batch()
    del x["d"]
    out = model(x, present)
    task_loss(out, {"act": torch.tensor([0, 1, 2])}, TASKS)[0].backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(grads[n] is None for n in grads if n.startswith("encoders.d.tokenizer."))
    assert grads["encoders.d.missing"] is not None and grads["encoders.s.tokenizer.proj.0.weight"] is not None


def test_set_trainable_peft_and_head_only() -> None:
    model = build(lora_rank=2, adapter_dim=4, prompt_tokens=2).train()
    assert set_trainable(model, ("peft", "head")) == ["head/act", "head/score", "peft"]
    x, present = batch()
    out = model(x, present)
    task_loss(out, {"act": torch.tensor([0, 1, 2]), "score": torch.tensor([0.5, 1.0, -1.0])}, TASKS)[0].backward()
    for name, p in model.named_parameters():
        trainable = group_of(name) == "peft" or group_of(name).startswith("head/")
        assert p.requires_grad == trainable, name
        assert (p.grad is not None) == trainable, name
    assert set_trainable(model, ("*",)) == sorted(param_groups(model))
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(ValidationError, match="patterns"):
        set_trainable(model, "peft")


def expected_groups(model: M3T) -> dict[str, str]:
    """Every parameter's group, written out independently of config.group_of."""
    cfg = model.cfg
    want: dict[str, str] = {"time_emb": "backbone", "cls": "backbone", "ln_f.weight": "backbone",
                            "ln_f.bias": "backbone"}
    if cfg.prompt_tokens:
        want["prompts"] = "peft"
    for name, enc in model.encoders.items():
        for p, _ in enc.named_parameters():
            want[f"encoders.{name}.{p}"] = f"missing/{name}" if p == "missing" else f"encoder/{name}"
        assert {"modality_emb", "missing"} <= {p for p, _ in enc.named_parameters()}
    for name, head in model.heads.items():
        for p, _ in head.named_parameters():
            want[f"heads.{name}.{p}"] = f"head/{name}"
    for i in range(cfg.n_layers):
        b = f"blocks.{i}"
        for ln in ("ln_1", "ln_2"):
            want |= {f"{b}.{ln}.weight": "backbone", f"{b}.{ln}.bias": "backbone"}
        linears = [f"{b}.attn.qkv", f"{b}.attn.proj"]
        if cfg.n_experts:
            want[f"{b}.ffn.router.weight"] = "experts"
            for e in range(cfg.n_experts):
                for lin in ("fc", "proj"):
                    name = f"{b}.ffn.experts.{e}.{lin}"
                    want |= {f"{name}.weight": "experts", f"{name}.bias": "experts"}
        else:
            linears += [f"{b}.ffn.fc", f"{b}.ffn.proj"]
        for lin in linears:
            want |= {f"{lin}.weight": "backbone", f"{lin}.bias": "backbone"}
            if cfg.lora_rank:
                want |= {f"{lin}.lora_a": "peft", f"{lin}.lora_b": "peft"}
        if cfg.adapter_dim:
            for lin in ("down", "up"):
                want |= {f"{b}.adapter.{lin}.weight": "peft", f"{b}.adapter.{lin}.bias": "peft"}
    return want


@pytest.mark.parametrize("changes", [{}, {"lora_rank": 2, "adapter_dim": 4, "prompt_tokens": 3},
                                     {"n_experts": 3, "top_k": 2, "lora_rank": 2, "n_layers": 2}])
def test_every_parameter_is_in_its_intended_group(changes: dict[str, Any]) -> None:
    model = build(**changes)
    got = {name: group_of(name) for name, _ in model.named_parameters()}
    assert got == expected_groups(model)
    groups = param_groups(model)
    assert sorted(n for names in groups.values() for n in names) == sorted(got)
    sizes = group_sizes(model)
    assert set(sizes) == set(groups) and sum(sizes.values()) == sum(p.numel() for p in model.parameters())
    # derived buffers (mel filterbank, window, time interpolation) are not state: the state dict is the parameters
    assert set(model.state_dict()) == set(got)


def test_moe_counts_and_load_balancing_loss() -> None:
    model = build(n_experts=3, top_k=2, n_layers=2, moe_loss_weight=0.5)
    x, present = batch(B=4)
    out = model(x, present)
    assert out.expert_counts is not None and out.expert_counts.shape == (4, 2, 3)
    assert torch.equal(out.expert_counts.sum(-1), torch.full((4, 2), model.seq_len * 2))
    assert float(out.aux_loss.detach()) > 0
    loss, _ = task_loss(out, {"act": torch.tensor([0, 1, 2, 0])}, TASKS)
    loss.backward()
    assert model.blocks[0].ffn.router.weight.grad is not None


def test_moe_output_is_gate_weighted_sum_of_top_k_experts() -> None:
    cfg = dataclasses.replace(TINY, n_experts=4, top_k=2)
    torch.manual_seed(0)
    moe = MixtureOfExperts(cfg).eval()
    x = torch.randn(2, 5, 16)
    out, balance, counts = moe(x)
    probs = torch.softmax(moe.router(x), -1)  # (B, T, E)
    gate, expert = probs.topk(2, -1)
    gate = gate / gate.sum(-1, keepdim=True)
    for b in range(2):
        for t in range(5):
            want = sum(gate[b, t, k] * moe.experts[int(expert[b, t, k])](x[b, t]) for k in range(2))
            close(out[b, t], want)
    f = torch.nn.functional.one_hot(expert, 4).sum((0, 1, 2)).float() / (10 * 2)
    close(balance, 4 * (f * probs.mean((0, 1))).sum())
    assert counts.shape == (2, 4) and torch.equal(counts.sum(-1), torch.tensor([10, 10]))


@pytest.mark.parametrize("changes", [{"lora_rank": 2}, {"adapter_dim": 4}, {"lora_rank": 3, "adapter_dim": 2}])
def test_lora_and_adapters_start_as_identity(changes: dict[str, Any]) -> None:
    base = build(seed=0)
    peft = build(seed=1, **changes)
    result = peft.load_state_dict(base.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert result.missing_keys and all(group_of(k) == "peft" for k in result.missing_keys)
    x, present = batch()
    a, b = base(x, present), peft(x, present)
    for t in a.outputs:
        close(a.outputs[t], b.outputs[t])


def test_task_loss_skips_unlabelled() -> None:
    out = ModelOutput({"act": torch.randn(4, 3, requires_grad=True), "score": torch.randn(4, requires_grad=True)},
                      torch.tensor(0.25), None)
    y = {"act": torch.tensor([2, -1, 0, -1]), "score": torch.tensor([float("nan"), 1.5, 0.0, float("nan")])}
    loss, per_task = task_loss(out, y, TASKS)
    ce = torch.nn.functional.cross_entropy(out.outputs["act"][[0, 2]], torch.tensor([2, 0]))
    hub = torch.nn.functional.huber_loss(out.outputs["score"][[1, 2]], torch.tensor([1.5, 0.0]))
    close(loss, (ce + hub) / 2 + 0.25)
    assert per_task == pytest.approx({"act": float(ce.detach()), "score": float(hub.detach())})
    # a task with no label in the batch, or no key at all, does not count
    loss, per_task = task_loss(out, {"act": y["act"], "score": torch.full((4,), float("nan"))}, TASKS)
    close(loss, ce + 0.25)
    assert set(per_task) == {"act"} == set(task_loss(out, {"act": y["act"]}, TASKS)[1])


def test_task_loss_logit_adjustment_adds_the_log_prior() -> None:
    out = ModelOutput({"act": torch.randn(3, 3, requires_grad=True)}, torch.tensor(0.0), None)
    y = {"act": torch.tensor([0, 1, 0])}
    prior = torch.log(torch.tensor([0.6, 0.4, 1e-6]))
    loss, _ = task_loss(out, y, TASKS, {"act": prior})
    close(loss, torch.nn.functional.cross_entropy(out.outputs["act"] + prior, y["act"]))
    loss.backward()
    # the class this data never show (prior ~0) gets (almost) no gradient: it is neither pushed down nor up
    assert float(out.outputs["act"].grad[:, 2].abs().max()) < 1e-4


def test_forward_returns_the_pooled_features_the_heads_read() -> None:
    m = cached()
    x, present = batch(B=4)
    out = m(x, present)
    assert out.features is not None
    close(out.features, m.features(x, present))
    close(out.outputs["act"], m.heads["act"](out.features))


def test_decorrelation_loss_hand_values() -> None:
    # four orthogonal +-1 columns with zero mean: the correlation matrix is the identity, ||I||^2 / d^2 = 1 / d
    z = torch.tensor([[1.0, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]])[:, 1:]
    z = torch.cat([z, -z])  # 8 samples, 3 columns, each column mean 0, columns orthogonal
    close(decorrelation_loss(z), torch.tensor(1 / 3), atol=1e-4)
    # every column the same signal up to scale and offset: every correlation is 1
    t = torch.linspace(-1, 1, 10)[:, None]
    close(decorrelation_loss(torch.cat([t, 3 * t + 2, -0.5 * t], dim=1)), torch.tensor(1.0), atol=1e-4)
    # a constant column counts as uncorrelated with the rest (and with itself: 0)
    close(decorrelation_loss(torch.cat([t, torch.ones(10, 1)], dim=1)), torch.tensor(1 / 4), atol=1e-4)


@given(st.integers(0, 10_000))
def test_decorrelation_loss_gradient_spreads_collapsed_features(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(32, 1, generator=g)
    z = (base @ torch.ones(1, 6) + 0.3 * torch.randn(32, 6, generator=g)).requires_grad_(True)
    before = decorrelation_loss(z)
    before.backward()
    assert z.grad is not None
    after = decorrelation_loss((z - 5.0 * z.grad).detach())
    assert 1 / 6 - 1e-6 <= float(after) < float(before.detach()) <= 1.0 + 1e-6


def test_task_loss_all_unlabelled_batch_is_zero_and_backpropagates() -> None:
    model = build(n_experts=2, top_k=1).train()
    x, present = batch()
    out = model(x, present)
    loss, per_task = task_loss(out, {"act": torch.full((3,), -1), "score": torch.full((3,), float("nan"))}, TASKS)
    assert float(loss.detach()) == 0.0 and loss.requires_grad and per_task == {}
    loss.backward()
    assert task_loss(out, {}, TASKS)[0].requires_grad


def test_deterministic_given_seed() -> None:
    x, present = batch()
    y = {"act": torch.tensor([0, 1, 2]), "score": torch.tensor([0.5, 1.0, -1.0])}
    runs = []
    for _ in range(2):
        model = build(seed=7, dropout=0.2, n_experts=2, lora_rank=2).train()
        torch.manual_seed(3)  # dropout masks
        out = model(x, present)
        task_loss(out, y, TASKS)[0].backward()
        runs.append((out, [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    assert same(runs[0][0], runs[1][0])
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))


@pytest.mark.parametrize(
    ("changes", "specs", "field"),
    [
        ({"n_heads": 3}, SPECS, "n_heads"),
        ({"n_experts": 2, "top_k": 3}, SPECS, "top_k"),
        ({"dropout": 1.0}, SPECS, "dropout"),
        ({"missing": "mean"}, SPECS, "missing"),
        ({}, (ModalitySpec("s", "series", 9, (3,), 2),), "patch"),
        ({}, (ModalitySpec("a", "audio", 512, (), 32),), "n_fft"),
        ({}, (ModalitySpec("d", "depth", 2, (4, 16), 1),), "depth shape"),
        ({}, (ModalitySpec("s.x", "series", 8, (3,), 2),), "name"),
        ({}, (), "modalities"),
    ],
)
def test_invalid_config_raises_naming_the_field(changes: dict[str, Any], specs: tuple[ModalitySpec, ...],
                                                field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        M3T(dataclasses.replace(TINY, **changes), specs, TASKS)


def test_invalid_inputs_raise_naming_the_modality() -> None:
    model = cached()
    x, present = batch()
    with pytest.raises(ValidationError, match=r"x\['s'\]"):
        model(dict(x, s=x["s"][:, :4]), present)
    with pytest.raises(ValidationError, match=r"present\['a'\]"):
        model(x, dict(present, a=present["a"].float()))
    with pytest.raises(ValidationError, match="batch size"):
        model(x, dict(present, d=present["d"][:2]))
    with pytest.raises(ValidationError, match="does not read"):
        model(dict(x, eeg=x["s"]), present)
