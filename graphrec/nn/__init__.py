"""Layers and fused functions."""

from graphrec.nn.functional import full_softmax_cross_entropy
from graphrec.nn.srgnn_conv import SRGNNConv

__all__ = ["SRGNNConv", "full_softmax_cross_entropy"]
