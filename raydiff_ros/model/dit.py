"""DiT ray denoiser: a transformer over all (image, patch) tokens, conditioned on the timestep.

Each token is one patch of one image; its input is the concatenation
``[backbone feature (F), noisy Plücker ray (6), NDC patch centre (2)]`` (F + 8 = 392 channels
for the official model). Tokens are ordered image-major, then row-major over the patch grid:
token = n * P*P + i * P + j. All N * P * P tokens attend to each other.

Architecture (DiT with adaLN-Zero, hidden size H):

* ``x_embedder``: per-token Linear(C_in -> H) (the official 1x1 convolution, weight reshaped);
* fixed sinusoid tables added to the tokens: image index n (base 10000) and flattened patch
  index i * P + j (base 70007); angle(pos, k) = pos / base^(2 floor(k/2) / H), sin on even k,
  cos on odd k;
* ``t_embedder``: 256-d [cos | sin] embedding of the integer timestep -> MLP -> c (B, H);
* ``blocks``: LN (no affine) -> modulate -> attention / tanh-GELU MLP, each gated, where
  SiLU(c) -> Linear gives (shift, scale, gate) for attention then for the MLP;
* ``final_layer``: LN -> modulate(shift, scale) -> Linear(H -> 6).

Parameter names follow the released checkpoint (``ray_predictor.<name>``), except that
``x_embedder.proj.weight`` (H, C_in, 1, 1) becomes ``x_embedder.weight`` (H, C_in) and the two
position tables are rebuilt, not stored.
"""

from __future__ import annotations

import math
from typing import Union

import numpy as np
import torch
from torch import nn

from raydiff_ros.model.config import RAY_DIM, DenoiserConfig
from raydiff_ros.model.layers import Attention, Mlp

ADALN_CHUNKS_BLOCK = 6
ADALN_CHUNKS_FINAL = 2


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x (B, L, H) * (1 + scale (B, H)) + shift (B, H), broadcast over tokens."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float) -> torch.Tensor:
    """Sinusoidal embedding of timesteps t (B,) -> (B, dim) = [cos(t f_k) | sin(t f_k)].

    f_k = exp(-ln(max_period) k / (dim/2)), k = 0 .. dim/2 - 1 (computed in float32).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period)
                      * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat((torch.cos(args), torch.sin(args)), dim=-1)


def sinusoid_table(num_positions: int, dim: int, base: float) -> torch.Tensor:
    """Fixed position table (num_positions, dim), float32 on the CPU, computed in float64.

    angle(pos, k) = pos / base^(2 floor(k/2) / dim); sin at even k, cos at odd k (interleaved).
    Row p does not depend on num_positions, so longer tables extend shorter ones.
    """
    positions = np.arange(num_positions, dtype=np.float64)[:, None]
    exponents = 2.0 * (np.arange(dim) // 2) / dim
    angles = positions / np.power(float(base), exponents)[None, :]
    table = np.empty_like(angles)
    table[:, 0::2] = np.sin(angles[:, 0::2])
    table[:, 1::2] = np.cos(angles[:, 1::2])
    return torch.tensor(table, dtype=torch.float32, device='cpu')


class TimestepEmbedder(nn.Module):
    """Integer timesteps (B,) -> conditioning vectors (B, H)."""

    def __init__(self, config: DenoiserConfig) -> None:
        super().__init__()
        self.dim = config.timestep_embedding_dim
        self.max_period = config.timestep_max_period
        self.mlp = nn.Sequential(nn.Linear(self.dim, config.hidden_size), nn.SiLU(),
                                 nn.Linear(config.hidden_size, config.hidden_size))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.dim, self.max_period))


class DiTBlock(nn.Module):
    """Transformer block with adaLN-Zero conditioning; x (B, L, H), c (B, H) -> (B, L, H)."""

    def __init__(self, config: DenoiserConfig) -> None:
        super().__init__()
        dim, eps = config.hidden_size, config.layer_norm_eps
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=eps)
        self.attn = Attention(dim, config.num_heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=eps)
        self.mlp = Mlp(dim, config.mlp_hidden_dim, gelu_approximate='tanh')
        self.adaLN_modulation = nn.Sequential(nn.SiLU(),
                                              nn.Linear(dim, ADALN_CHUNKS_BLOCK * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
            self.adaLN_modulation(c).chunk(ADALN_CHUNKS_BLOCK, dim=1))
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class FinalLayer(nn.Module):
    """LN -> modulate(shift, scale) -> Linear; x (B, L, H), c (B, H) -> (B, L, 6)."""

    def __init__(self, config: DenoiserConfig) -> None:
        super().__init__()
        dim = config.hidden_size
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=config.layer_norm_eps)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(),
                                              nn.Linear(dim, ADALN_CHUNKS_FINAL * dim))
        self.linear = nn.Linear(dim, RAY_DIM)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(ADALN_CHUNKS_FINAL, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class RayDiT(nn.Module):
    """The ray denoiser.

    ``forward(tokens, t)``: tokens (B, N, C_in, P, P) with channels [feature, noisy ray, ndc],
    t an int or a tensor of B (or 1) integer timesteps -> x0 prediction (B, N, 6, P, P).
    """

    def __init__(self, config: DenoiserConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.hidden_size
        self.x_embedder = nn.Linear(config.in_channels, dim)
        self.register_buffer('image_pos_table', sinusoid_table(
            config.max_num_images, dim, config.image_index_base), persistent=False)
        self.register_buffer('token_pos_table', sinusoid_table(
            config.tokens_per_image, dim, config.patch_index_base), persistent=False)
        self.t_embedder = TimestepEmbedder(config)
        self.blocks = nn.ModuleList(DiTBlock(config) for _ in range(config.depth))
        self.final_layer = FinalLayer(config)

    def image_positions(self, num_images: int) -> torch.Tensor:
        """Image-index table (num_images, H); rebuilt when num_images exceeds the stored rows."""
        if num_images <= self.image_pos_table.shape[0]:
            return self.image_pos_table[:num_images]
        table = sinusoid_table(num_images, self.config.hidden_size, self.config.image_index_base)
        return table.to(self.image_pos_table)

    def forward(self, tokens: torch.Tensor, t: Union[int, torch.Tensor]) -> torch.Tensor:
        cfg = self.config
        P = cfg.num_patches
        if tokens.ndim != 5 or tokens.shape[2:] != (cfg.in_channels, P, P):
            raise ValueError(f'tokens must be (B, N, {cfg.in_channels}, {P}, {P}), '
                             f'got {tuple(tokens.shape)}')
        B, N = tokens.shape[:2]
        x = self.x_embedder(tokens.permute(0, 1, 3, 4, 2).reshape(B, N, P * P, -1))
        x = x + self.image_positions(N)[None, :, None] + self.token_pos_table[None, None]
        x = x.reshape(B, N * P * P, cfg.hidden_size)
        c = self.t_embedder(timesteps_for_batch(t, B, x.device))
        for block in self.blocks:
            x = block(x, c)
        x = self.final_layer(x, c)  # (B, N*P*P, 6)
        return x.reshape(B, N, P, P, RAY_DIM).permute(0, 1, 4, 2, 3)


def timesteps_for_batch(t: Union[int, torch.Tensor], batch_size: int,
                        device: torch.device) -> torch.Tensor:
    """Integer timestep(s) -> long tensor (batch_size,); a single value is repeated."""
    if isinstance(t, bool):
        raise TypeError('timestep must be an integer, got a bool')
    t = torch.as_tensor(t, device=device)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f'timesteps must be integers, got dtype {t.dtype}')
    t = t.reshape(-1).long()
    if t.numel() == 1:
        return t.expand(batch_size)
    if t.numel() != batch_size:
        raise ValueError(f'got {t.numel()} timesteps for a batch of {batch_size}')
    return t
