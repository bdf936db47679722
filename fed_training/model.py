"""M3T, the multi-modal multi-task transformer the federated trainer trains. Read it top to bottom:

1. **Encoders** (``encoders.<modality>``): a tokenizer per input turns one window into a fixed number of
   ``d_model`` tokens (series: 1-D patches; audio: convolutions over the log-mel spectrogram, pooled per token;
   depth: 2-D patches of each frame). A token whose steps are mostly missing becomes the modality's learned
   missing token, one with a few absent steps is encoded from its present ones (series: absent steps take the
   patch's mean; audio: frames with a gap take the band means); a modality embedding is added.
2. **Backbone**: a learned time embedding (shared by all modalities, read at each token's centre time), then
   ``[CLS, prompts, tokens of every modality]`` through pre-norm transformer blocks whose feed-forward is dense
   or a top-k mixture of experts. LoRA, adapters and prompt tokens are the parameter-efficient modules.
3. **Heads** (``heads.<task>``): one per task on the pooled output, plus :func:`task_loss`.

Parameter names follow :func:`xrdata.fed_training.config.group_of`, which decides what is trained and sent:
``encoders.<m>.*`` -> ``encoder/<m>`` (its learned missing token ``encoders.<m>.missing`` -> ``missing/<m>``),
``heads.<t>.*`` -> ``head/<t>``, ``prompts`` and ``lora_a``/``lora_b``/
``adapter`` components -> ``peft``, ``router``/``experts`` components -> ``experts``, the rest -> ``backbone``.

Shapes: ``B`` batch, ``T`` tokens in the sequence, ``N`` tokens of one modality, ``C`` = ``d_model``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xrdata.errors import ValidationError, require
from xrdata.fed_training.config import ModalitySpec, ModelConfig, TaskSpec, group_of, selected

__all__ = [
    "M3T", "WINDOW_S", "LoRALinear", "ModelOutput", "decorrelation_loss", "group_sizes", "param_groups",
    "set_trainable", "task_loss",
]

WINDOW_S = 2.0  # window length (s) the MODALITIES step counts assume; gives the audio sample rate steps / WINDOW_S
DEPTH_PIXELS = 8  # depth patch side (pixels): an 8 x 8 stride-8 convolution over each frame
DEPTH_CHANNELS = 16  # depth patch features before the projection to d_model


@dataclass
class ModelOutput:
    """What :meth:`M3T.forward` returns."""

    outputs: dict[str, Tensor]  # task -> (B, classes) logits, or (B,) for a regression task
    aux_loss: Tensor  # scalar MoE load-balancing loss, already times cfg.moe_loss_weight (0 without MoE)
    expert_counts: Tensor | None  # (B, n_layers, n_experts) int64 tokens of each sample per expert (None: no MoE)
    features: Tensor | None = None  # (B, 2C) the pooled features the heads read


# ---------------------------------------------------------------------------------------------------- encoders


class SeriesTokenizer(nn.Module):
    """``(B, steps, F)`` -> ``(B, N, C)``: non-overlapping patches of ``patch`` steps, flattened, through an MLP."""

    def __init__(self, spec: ModalitySpec, d_model: int) -> None:
        super().__init__()
        self.patch = spec.patch
        self.proj = nn.Sequential(nn.Linear(spec.patch * spec.shape[0], d_model), nn.GELU(),
                                  nn.Linear(d_model, d_model))

    def forward(self, x: Tensor, present: Tensor | None = None) -> Tensor:
        """``present`` ``(B, S)``: absent steps (zero in ``x``) take the mean of the present steps of their patch.
        A zero inside an encoded patch reads as a real value (gaze straight ahead, the head at 1.4 m, a hand at
        its wrist) and a loss burst's edge as a jump."""
        B, S, n_features = x.shape
        xp = x.reshape(B, S // self.patch, self.patch, n_features)
        if present is not None:
            mp = present.reshape(B, S // self.patch, self.patch, 1)
            xp = torch.where(mp, xp, xp.sum(2, keepdim=True) / mp.sum(2, keepdim=True).clamp(min=1))
        return self.proj(xp.reshape(B, S // self.patch, self.patch * n_features))  # (B, N, C)


class AudioTokenizer(nn.Module):
    """``(B, steps)`` waveform -> ``(B, N, C)``: a small convolutional network over the window's log-mel spectrogram.

    Hann-windowed STFT of the whole window (``n_fft``, hop ``n_fft // 2``, no padding: ``frames`` =
    ``1 + (steps - n_fft) // hop``), power through a mel filterbank (librosa, sample rate ``steps / window_s``),
    ``log(mel + 1e-10) / 3`` (headset microphones record speech at ~1e-3 full scale, whose log-mel power spans
    about -19..-8: a floor of 1e-6 would hide it), minus each band's mean over the window (cepstral mean
    normalisation: the microphone's and the room's colouring and the talker's level vary by user and session),
    two 5-frame convolutions over time (GELU), then per token the mean and the max of the frames under it,
    through a linear layer. The convolutions run across token boundaries, so a word cut by one is seen whole,
    and are shift-equivariant, so a word is recognised wherever it falls. With each 0.25 s token's frames
    encoded apart by an MLP, a speech-command model on audio alone reached 0.50 macro-F1 on the benchmark
    cohort's future weeks after 8000 steps; this one reaches 0.66 after 3000 (``benchmarks/README.md``).
    """

    mel: Tensor
    window: Tensor

    def __init__(self, spec: ModalitySpec, cfg: ModelConfig, window_s: float) -> None:
        super().__init__()
        librosa = require("librosa", "train")
        self.n_fft, self.hop, self.n_tokens = cfg.n_fft, cfg.n_fft // 2, spec.steps // spec.patch
        mel = librosa.filters.mel(sr=spec.steps / window_s, n_fft=cfg.n_fft, n_mels=cfg.n_mels)  # type: ignore[attr-defined]
        # derived from the config, so not part of the state dict (nor of what clients send)
        self.register_buffer("mel", torch.as_tensor(mel, dtype=torch.float32), persistent=False)  # (n_mels, n_fft//2+1)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)  # (n_fft,)
        C = cfg.d_model
        self.conv = nn.Sequential(nn.Conv1d(cfg.n_mels, C, 5, padding=2), nn.GELU(),
                                  nn.Conv1d(C, C, 5, padding=2), nn.GELU())
        self.proj = nn.Linear(2 * C, C)

    def forward(self, x: Tensor, present: Tensor | None = None) -> Tensor:
        """``present`` ``(B, S)``: frames holding an absent sample (zero in ``x``) are left out of the band means
        and set to them: a gap's edges are broadband clicks and its silence a drop in power, neither of which
        the speaker made."""
        spec = torch.stft(x, self.n_fft, self.hop, window=self.window, center=False, return_complex=True)
        power = spec.real.square() + spec.imag.square()  # (B, n_fft//2+1, frames)
        logmel = torch.log(self.mel @ power + 1e-10) / 3.0  # (B, n_mels, frames)
        if present is None:
            logmel = logmel - logmel.mean(-1, keepdim=True)
        else:
            whole = present.unfold(1, self.n_fft, self.hop).all(-1)  # (B, frames)
            w = torch.where(whole.any(-1, keepdim=True), whole, True).to(logmel.dtype)[:, None]  # (B, 1, frames)
            mean = (logmel * w).sum(-1, keepdim=True) / w.sum(-1, keepdim=True)
            logmel = (logmel - mean) * w
        z = self.conv(logmel)  # (B, C, frames)
        pooled = torch.cat([F.adaptive_avg_pool1d(z, self.n_tokens), F.adaptive_max_pool1d(z, self.n_tokens)], 1)
        return self.proj(pooled.transpose(1, 2))  # (B, N, C)


class DepthTokenizer(nn.Module):
    """``(B, steps, H, W)`` metres -> ``(B, N, C)``: a token's ``patch`` frames stacked as channels, an 8 x 8
    stride-8 convolution (one feature vector per 8 x 8-pixel patch), flattened, through a linear layer."""

    def __init__(self, spec: ModalitySpec, d_model: int) -> None:
        super().__init__()
        H, W = spec.shape
        self.patch = spec.patch
        self.conv = nn.Conv2d(spec.patch, DEPTH_CHANNELS, kernel_size=DEPTH_PIXELS, stride=DEPTH_PIXELS)
        self.proj = nn.Linear(DEPTH_CHANNELS * (H // DEPTH_PIXELS) * (W // DEPTH_PIXELS), d_model)

    def forward(self, x: Tensor, present: Tensor | None = None) -> Tensor:
        """``present`` is unused: a token is one frame, present or missing as a whole."""
        B, S, H, W = x.shape
        N = S // self.patch
        z = F.gelu(self.conv(x.reshape(B * N, self.patch, H, W)))  # (B*N, DEPTH_CHANNELS, H/8, W/8)
        return self.proj(z.reshape(B, N, -1))  # (B, N, C)


class ModalityEncoder(nn.Module):
    """One modality's tokenizer, learned missing token and modality embedding: window -> ``(B, N, C)``.

    Steps marked absent are zero-filled before tokenizing (so their values never matter). With
    ``cfg.missing == "token"`` a token with fewer than half of its steps present is replaced by the learned
    ``missing`` token and the others are encoded from their present steps (the tokenizer gets ``present``);
    with ``"zero"`` the zero-filled input is encoded as usual (the naive baseline).
    """

    def __init__(self, spec: ModalitySpec, cfg: ModelConfig, window_s: float) -> None:
        super().__init__()
        self.spec = spec
        self.n_tokens = spec.steps // spec.patch
        tokenizer: nn.Module
        if spec.kind == "series":
            tokenizer = SeriesTokenizer(spec, cfg.d_model)
        elif spec.kind == "audio":
            tokenizer = AudioTokenizer(spec, cfg, window_s)
        else:
            tokenizer = DepthTokenizer(spec, cfg.d_model)
        self.tokenizer = tokenizer
        self.ln = nn.LayerNorm(cfg.d_model)
        self.modality_emb = nn.Parameter(0.02 * torch.randn(cfg.d_model))
        self.missing = nn.Parameter(0.02 * torch.randn(cfg.d_model)) if cfg.missing == "token" else None

    def forward(self, x: Tensor | None, present: Tensor | None, batch: int) -> Tensor:
        """``x`` ``(B, steps, *shape)`` and ``present`` ``(B, steps)`` bool, or ``x`` None: all missing."""
        C = self.modality_emb.shape[0]
        if x is None or present is None:
            present = torch.zeros(batch, self.spec.steps, dtype=torch.bool, device=self.modality_emb.device)
            x = None
        token_present = present.reshape(batch, self.n_tokens, self.spec.patch).float().mean(-1) >= 0.5  # (B, N)
        if self.missing is not None and not bool(token_present.any()):
            # nothing to encode: skip the tokenizer so its gradients stay None and the optimizer leaves it alone
            return (self.missing + self.modality_emb).expand(batch, self.n_tokens, C)
        if x is None:
            x = torch.zeros(batch, self.spec.steps, *self.spec.shape, device=self.modality_emb.device)
        mask = present.reshape(batch, self.spec.steps, *(1 for _ in self.spec.shape))
        x = torch.where(mask, x.to(self.modality_emb.dtype), 0.0)  # where, not *, so NaN at absent steps is harmless
        tok = self.ln(self.tokenizer(x, present if self.missing is not None else None))  # (B, N, C)
        if self.missing is not None:
            tok = torch.where(token_present[..., None], tok, self.missing)
        return tok + self.modality_emb


# ---------------------------------------------------------------------------------------------------- backbone


class LoRALinear(nn.Linear):
    """``nn.Linear`` plus a low-rank update ``(lora_alpha / rank) * B A x``; ``lora_b`` starts at zero, so the
    layer starts equal to the plain linear layer and its ``weight``/``bias`` keep the plain layer's names."""

    def __init__(self, in_features: int, out_features: int, rank: int, alpha: float) -> None:
        super().__init__(in_features, out_features)
        self.lora_a = nn.Parameter(torch.randn(rank, in_features) / in_features**0.5)
        self.lora_b = nn.Parameter(torch.zeros(out_features, rank))
        self.scale = alpha / rank

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x) + self.scale * F.linear(F.linear(x, self.lora_a), self.lora_b)


def linear(n_in: int, n_out: int, lora_rank: int, lora_alpha: float) -> nn.Linear:
    return LoRALinear(n_in, n_out, lora_rank, lora_alpha) if lora_rank > 0 else nn.Linear(n_in, n_out)


class SelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = linear(cfg.d_model, 3 * cfg.d_model, cfg.lora_rank, cfg.lora_alpha)
        self.proj = linear(cfg.d_model, cfg.d_model, cfg.lora_rank, cfg.lora_alpha)
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        # no dropout on the attention weights: on CPU it forces SDPA's slow math path (a quarter of a step)
        y = F.scaled_dot_product_attention(q, k, v)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_drop(self.proj(y))


class FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig, lora_rank: int) -> None:
        super().__init__()
        hidden = cfg.ffn_mult * cfg.d_model
        self.fc = linear(cfg.d_model, hidden, lora_rank, cfg.lora_alpha)
        self.proj = linear(hidden, cfg.d_model, lora_rank, cfg.lora_alpha)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class MixtureOfExperts(nn.Module):
    """Top-k routed feed-forward experts (gates softmax-renormalised over the top k) with the Switch Transformer
    load-balancing loss ``n_experts * sum_i f_i P_i`` (f_i: share of routing slots given to expert i, P_i: mean
    router probability of expert i; 1 when balanced)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.top_k = cfg.top_k
        self.router = nn.Linear(cfg.d_model, cfg.n_experts, bias=False)
        self.experts = nn.ModuleList(FeedForward(cfg, lora_rank=0) for _ in range(cfg.n_experts))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(B, T, C)`` -> output ``(B, T, C)``, load-balancing loss (scalar), counts ``(B, n_experts)``."""
        B, T, C = x.shape
        E = len(self.experts)
        flat = x.reshape(B * T, C)
        probs = F.softmax(self.router(flat), dim=-1)  # (B*T, E)
        gate, expert = probs.topk(self.top_k, dim=-1)  # (B*T, k)
        gate = gate / gate.sum(-1, keepdim=True)
        out = torch.zeros_like(flat)
        for e, ffn in enumerate(self.experts):
            token, slot = torch.where(expert == e)  # the tokens routed to expert e, and in which of their k slots
            out.index_add_(0, token, ffn(flat[token]) * gate[token, slot, None])
        routed = F.one_hot(expert, E).sum(1)  # (B*T, E): 1 where the token went to the expert
        balance = E * (routed.float().mean(0) / self.top_k * probs.mean(0)).sum()
        return out.view(B, T, C), balance, routed.view(B, T, E).sum(1)


class Adapter(nn.Module):
    """Bottleneck adapter ``x + up(gelu(down(x)))``; ``up`` starts at zero, so the adapter starts as the identity."""

    def __init__(self, d_model: int, dim: int) -> None:
        super().__init__()
        self.down = nn.Linear(d_model, dim)
        self.up = nn.Linear(dim, d_model)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.up(F.gelu(self.down(x)))


class Block(nn.Module):
    """Pre-norm transformer block, then the optional adapter."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.d_model)
        self.ffn = MixtureOfExperts(cfg) if cfg.n_experts > 0 else FeedForward(cfg, cfg.lora_rank)
        self.adapter = Adapter(cfg.d_model, cfg.adapter_dim) if cfg.adapter_dim > 0 else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``(B, T, C)`` -> ``(B, T, C)``, MoE balance loss and ``(B, n_experts)`` counts (None when dense)."""
        x = x + self.attn(self.ln_1(x))
        balance = counts = None
        if isinstance(self.ffn, MixtureOfExperts):
            h, balance, counts = self.ffn(self.ln_2(x))
        else:
            h = self.ffn(self.ln_2(x))
        x = x + h
        if self.adapter is not None:
            x = self.adapter(x)
        return x, balance, counts


# ---------------------------------------------------------------------------------------------------- model


class Head(nn.Module):
    """``(B, 2C)`` pooled features -> ``(B, classes)`` logits, or ``(B,)`` for a regression task."""

    def __init__(self, n_in: int, task: TaskSpec, dropout: float) -> None:
        super().__init__()
        self.regression = task.regression
        self.ln = nn.LayerNorm(n_in)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(n_in, 1 if task.regression else len(task.classes))

    def forward(self, x: Tensor) -> Tensor:
        y = self.out(self.drop(self.ln(x)))
        return y.squeeze(-1) if self.regression else y


def time_interpolation(n_tokens: int, n_time: int) -> Tensor:
    """``(n_tokens, n_time)`` weights reading a ``(n_time, C)`` table, spread evenly over the window, at the centre
    time of each of ``n_tokens`` equal tokens (linear interpolation), so tokens of different modalities covering
    the same moment get the same time embedding."""
    pos = ((torch.arange(n_tokens) + 0.5) / n_tokens * n_time - 0.5).clamp(0, n_time - 1)  # in table rows
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=n_time - 1)
    frac = pos - lo
    w = torch.zeros(n_tokens, n_time)
    w[torch.arange(n_tokens), lo] += 1 - frac
    w[torch.arange(n_tokens), hi] += frac
    return w


class M3T(nn.Module):
    """Multi-modal multi-task transformer: ``forward(x, present)`` -> :class:`ModelOutput`.

    ``modalities`` are the inputs (any of ``config.MODALITIES``), ``tasks`` the heads. ``window_s`` is the window
    length in seconds, used only for the audio sample rate (``steps / window_s``) of the mel filterbank.
    Deterministic on CPU given ``torch.manual_seed`` (initialisation and dropout).
    """

    token_time: Tensor

    def __init__(self, cfg: ModelConfig, modalities: Sequence[ModalitySpec], tasks: Sequence[TaskSpec],
                 *, window_s: float = WINDOW_S) -> None:
        super().__init__()
        _validate(cfg, modalities, tasks, window_s)
        self.cfg, self.modalities, self.tasks = cfg, tuple(modalities), tuple(tasks)
        C = cfg.d_model
        self.encoders = nn.ModuleDict({m.name: ModalityEncoder(m, cfg, window_s) for m in modalities})
        self.n_tokens = {m.name: m.steps // m.patch for m in modalities}  # tokens per modality
        n_time = max(self.n_tokens.values())
        self.time_emb = nn.Parameter(0.02 * torch.randn(n_time, C))
        token_time = torch.cat([time_interpolation(n, n_time) for n in self.n_tokens.values()])  # (T_mod, n_time)
        self.register_buffer("token_time", token_time, persistent=False)
        self.cls = nn.Parameter(0.02 * torch.randn(C))
        self.prompts = nn.Parameter(0.02 * torch.randn(cfg.prompt_tokens, C)) if cfg.prompt_tokens > 0 else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(C)
        self.heads = nn.ModuleDict({t.name: Head(2 * C, t, cfg.dropout) for t in tasks})
        self.seq_len = 1 + cfg.prompt_tokens + sum(self.n_tokens.values())  # T: tokens per sample in the backbone

    def forward(self, x: Mapping[str, Tensor], present: Mapping[str, Tensor]) -> ModelOutput:
        """``x[m]`` ``(B, steps, *shape)`` (float32/float16; audio ``(B, steps)``) and ``present[m]`` ``(B, steps)``
        bool per modality; a modality missing from ``x`` counts as all missing."""
        pooled, balance, counts = self._trunk(x, present)
        outputs = {name: head(pooled) for name, head in self.heads.items()}
        if balance:
            aux = self.cfg.moe_loss_weight * torch.stack(balance).mean()
            expert_counts: Tensor | None = torch.stack(counts, dim=1)  # (B, n_layers, n_experts)
        else:
            aux, expert_counts = pooled.new_zeros(()), None
        return ModelOutput(outputs, aux, expert_counts, pooled)

    def features(self, x: Mapping[str, Tensor], present: Mapping[str, Tensor]) -> Tensor:
        """``(B, 2 d_model)``: the pooled features every head reads (same inputs as :meth:`forward`)."""
        return self._trunk(x, present)[0]

    def _trunk(self, x: Mapping[str, Tensor], present: Mapping[str, Tensor]
               ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        B = self._batch_size(x, present)
        C = self.cfg.d_model
        tokens = [enc(x.get(m), present.get(m), B) for m, enc in self.encoders.items()]
        h = torch.cat(tokens, dim=1) + self.token_time @ self.time_emb  # (B, T_mod, C)
        lead = [self.cls.expand(B, 1, C)]
        if self.prompts is not None:
            lead.append(self.prompts.expand(B, -1, -1))
        h = self.drop(torch.cat([*lead, h], dim=1))  # (B, T, C)
        balance, counts = [], []
        for block in self.blocks:
            h, b, c = block(h)
            if b is not None and c is not None:
                balance.append(b)
                counts.append(c)
        h = self.ln_f(h)
        modality_tokens = h[:, 1 + self.cfg.prompt_tokens:]  # (B, T_mod, C)
        pooled = torch.cat([h[:, 0], modality_tokens.mean(1)], dim=-1)  # (B, 2C): CLS and mean of modality tokens
        return pooled, balance, counts

    def _batch_size(self, x: Mapping[str, Tensor], present: Mapping[str, Tensor]) -> int:
        sizes = set()
        for spec in self.modalities:
            m = spec.name
            if m in present:
                p = present[m]
                if p.dtype != torch.bool or p.shape[1:] != (spec.steps,):
                    raise ValidationError(f"present[{m!r}] must be a (B, {spec.steps}) bool tensor, got "
                                          f"{tuple(p.shape)} {p.dtype}")
                sizes.add(p.shape[0])
            if m in x:
                if m not in present:
                    raise ValidationError(f"present[{m!r}] is missing while x has {m!r}")
                if x[m].shape[1:] != (spec.steps, *spec.shape):
                    want = ", ".join(map(str, (spec.steps, *spec.shape)))
                    raise ValidationError(f"x[{m!r}] must have shape (B, {want}), got {tuple(x[m].shape)}")
                sizes.add(x[m].shape[0])
        unknown = sorted(set(x) - set(self.n_tokens))
        if unknown:
            raise ValidationError(f"x has modalities {unknown} the model does not read; it reads {list(self.n_tokens)}")
        if len(sizes) != 1:
            raise ValidationError(f"x and present must hold one batch size (B) for every modality, got {sorted(sizes)}")
        return sizes.pop()


def _validate(cfg: ModelConfig, modalities: Sequence[ModalitySpec], tasks: Sequence[TaskSpec], window_s: float) -> None:
    def check(ok: bool, message: str) -> None:
        if not ok:
            raise ValidationError(message)

    check(cfg.d_model > 0 and cfg.n_heads > 0,
          f"ModelConfig.d_model ({cfg.d_model}) and n_heads ({cfg.n_heads}) must be > 0")
    check(cfg.d_model % cfg.n_heads == 0,
          f"ModelConfig.d_model ({cfg.d_model}) must be divisible by n_heads ({cfg.n_heads})")
    check(cfg.n_layers > 0, f"ModelConfig.n_layers must be > 0, got {cfg.n_layers}")
    check(cfg.ffn_mult > 0, f"ModelConfig.ffn_mult must be > 0, got {cfg.ffn_mult}")
    check(0.0 <= cfg.dropout < 1.0, f"ModelConfig.dropout must be in [0, 1), got {cfg.dropout}")
    check(cfg.n_experts >= 0, f"ModelConfig.n_experts must be >= 0, got {cfg.n_experts}")
    if cfg.n_experts > 0:
        check(1 <= cfg.top_k <= cfg.n_experts,
              f"ModelConfig.top_k ({cfg.top_k}) must be in 1..n_experts ({cfg.n_experts})")
    check(cfg.moe_loss_weight >= 0, f"ModelConfig.moe_loss_weight must be >= 0, got {cfg.moe_loss_weight}")
    check(cfg.missing in ("token", "zero"), f"ModelConfig.missing must be 'token' or 'zero', got {cfg.missing!r}")
    check(cfg.lora_rank >= 0, f"ModelConfig.lora_rank must be >= 0, got {cfg.lora_rank}")
    check(cfg.adapter_dim >= 0, f"ModelConfig.adapter_dim must be >= 0, got {cfg.adapter_dim}")
    check(cfg.prompt_tokens >= 0, f"ModelConfig.prompt_tokens must be >= 0, got {cfg.prompt_tokens}")
    check(window_s > 0, f"window_s must be > 0 s, got {window_s}")
    check(len(modalities) > 0, "modalities must not be empty")
    names = [m.name for m in modalities]
    check(len(set(names)) == len(names), f"modalities have duplicate names: {names}")
    for m in modalities:
        where = f"modality {m.name!r}"
        check(bool(m.name) and "." not in m.name, f"{where}: name must be non-empty without '.'")
        check(m.steps > 0 and m.patch > 0, f"{where}: steps ({m.steps}) and patch ({m.patch}) must be > 0")
        check(m.steps % m.patch == 0, f"{where}: steps ({m.steps}) must be a multiple of patch ({m.patch})")
        if m.kind == "series":
            check(len(m.shape) == 1 and m.shape[0] > 0, f"{where}: series shape must be (features,), got {m.shape}")
        elif m.kind == "audio":
            check(m.shape == (), f"{where}: audio shape must be (), got {m.shape}")
            check(cfg.n_fft >= 2 and cfg.n_mels > 0,
                  f"ModelConfig.n_fft ({cfg.n_fft}) must be >= 2 and n_mels ({cfg.n_mels}) > 0")
            check(m.patch >= cfg.n_fft,
                  f"{where}: patch ({m.patch} samples) must be >= ModelConfig.n_fft ({cfg.n_fft})")
        elif m.kind == "depth":
            check(len(m.shape) == 2 and min(m.shape) >= DEPTH_PIXELS,
                  f"{where}: depth shape must be (height, width) of at least {DEPTH_PIXELS} pixels, got {m.shape}")
        else:
            check(False, f"{where}: kind must be 'series', 'audio' or 'depth', got {m.kind!r}")
    check(len(tasks) > 0, "tasks must not be empty")
    check(len({t.name for t in tasks}) == len(tasks), f"tasks have duplicate names: {[t.name for t in tasks]}")
    for t in tasks:
        check(bool(t.name) and "." not in t.name, f"task {t.name!r}: name must be non-empty without '.'")
        check(t.regression or len(t.classes) >= 2,
              f"task {t.name!r}: a classification task needs >= 2 classes, got {t.classes}")


# ---------------------------------------------------------------------------------------------------- loss


def decorrelation_loss(z: Tensor) -> Tensor:
    """``||K||_F^2 / d^2`` of the correlation matrix ``K`` (d x d) of the features ``z`` ``(B, d)`` over the batch
    (FedDecorr, Shi et al., ICLR 2023): 1/d when the d dimensions are uncorrelated, 1 when they all move together.

    Under label skew a client's local steps collapse the features onto the few directions its classes need
    (dimensional collapse), and averaging such updates carries the collapse into the global model; penalising
    the correlation keeps the feature space spread. ``B`` >= 2; a constant dimension counts as uncorrelated.
    """
    z = z - z.mean(dim=0)
    z = z / (z.pow(2).mean(dim=0).sqrt() + 1e-5)
    corr = z.T @ z / z.shape[0]
    return corr.pow(2).sum() / z.shape[1] ** 2


def task_loss(out: ModelOutput, y: Mapping[str, Tensor], tasks: Sequence[TaskSpec],
              log_prior: Mapping[str, Tensor] | None = None) -> tuple[Tensor, dict[str, float]]:
    """Mean over the tasks this batch has labels for of cross-entropy (classification, label ``-1`` skipped) or
    Huber (regression, NaN skipped), plus ``out.aux_loss``; returns ``(loss, {task: loss})``.

    ``y[task]`` is ``(B,)`` int64 class indices or float targets. ``log_prior[task]`` ``(classes,)``: the log
    label distribution of the training data, added to the logits inside the loss (logit adjustment / balanced
    softmax, Menon et al. 2021; FedLC, Zhang et al. 2022), so the logits learn the class-conditional evidence
    and not the data's prior; under label skew a client then no longer pushes down the classes it never sees
    (their prior is ~0, so their gradient is ~0). Prediction uses the raw logits. A batch without any label
    gives a zero loss (no aux loss either: there is nothing to learn from it) that still requires grad, so
    callers can always call ``backward()``.
    """
    terms: list[Tensor] = []
    per_task: dict[str, float] = {}
    for task in tasks:
        if task.name not in y or task.name not in out.outputs:
            continue
        pred = out.outputs[task.name]
        target = y[task.name].to(pred.device)
        if task.regression:
            target = target.float()
            keep = ~torch.isnan(target)
            if not bool(keep.any()):
                continue
            loss = F.huber_loss(pred[keep], target[keep])
        else:
            target = target.long()
            keep = target >= 0
            if not bool(keep.any()):
                continue
            logits = pred[keep]
            if log_prior is not None and task.name in log_prior:
                logits = logits + log_prior[task.name].to(logits.device)
            loss = F.cross_entropy(logits, target[keep])
        terms.append(loss)
        per_task[task.name] = float(loss.detach())
    if not terms:
        return 0.0 * torch.stack([o.sum() for o in out.outputs.values()]).sum(), per_task
    return torch.stack(terms).mean() + out.aux_loss, per_task


# ---------------------------------------------------------------------------------------------------- groups


def param_groups(model: nn.Module) -> dict[str, list[str]]:
    """Module group (:func:`~xrdata.fed_training.config.group_of`) -> names of its parameters, in model order."""
    groups: dict[str, list[str]] = {}
    for name, _ in model.named_parameters():
        groups.setdefault(group_of(name), []).append(name)
    return groups


def set_trainable(model: nn.Module, patterns: tuple[str, ...]) -> list[str]:
    """Make only the parameters of groups matching ``patterns`` (``"*"``, ``"peft"``, ``"head"``, ``"encoder/eeg"``
    ...) require grad; returns the trainable groups. Patterns matching no group of this model are allowed (a
    ``"peft"`` pattern on a model without PEFT modules trains nothing extra)."""
    if isinstance(patterns, str) or not all(isinstance(p, str) for p in patterns):
        raise ValidationError(f"patterns must be a tuple of group patterns like ('peft', 'head'), got {patterns!r}")
    trainable = set()
    for name, p in model.named_parameters():
        group = group_of(name)
        on = selected(group, tuple(patterns))
        p.requires_grad_(on)
        if on:
            trainable.add(group)
    return sorted(trainable)


def group_sizes(model: nn.Module) -> dict[str, int]:
    """Module group -> number of parameters (scalars) in it."""
    sizes: dict[str, int] = {}
    for name, p in model.named_parameters():
        sizes[group_of(name)] = sizes.get(group_of(name), 0) + p.numel()
    return sizes
