"""Layers and fused functions."""

from graphrec.nn.functional import (
    clip_norm,
    full_softmax_cross_entropy,
    masked_attention_pool,
    timing_signal,
)
from graphrec.nn.relu_self_attention import ReLUSelfAttention
from graphrec.nn.srgnn_conv import SRGNNConv

__all__ = [
    "ReLUSelfAttention",
    "SRGNNConv",
    "clip_norm",
    "full_softmax_cross_entropy",
    "masked_attention_pool",
    "timing_signal",
]
