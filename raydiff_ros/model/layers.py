"""Transformer layers shared by the DINOv2 backbone and the DiT denoiser."""

import torch
from torch import nn


class Attention(nn.Module):
    """Multi-head self-attention, fused qkv projection with bias, softmax scale head_dim^-0.5.

    (B, L, D) -> (B, L, D), through ``scaled_dot_product_attention`` (fused kernels).
    Parameter names (``qkv``, ``proj``) are those of the official checkpoints.
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        qkv = self.qkv(x).reshape(B, L, 3, self.num_heads, D // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, L, head_dim)
        x = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(B, L, D))


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2; ``gelu_approximate`` 'none' (exact, DINOv2) or 'tanh' (DiT)."""

    def __init__(self, dim: int, hidden_dim: int, gelu_approximate: str = 'none') -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU(approximate=gelu_approximate)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))
