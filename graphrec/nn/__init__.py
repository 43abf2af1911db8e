"""Layers and fused functions."""

from graphrec.nn.augru import AUGRU
from graphrec.nn.dice import Dice
from graphrec.nn.field_embedding import FieldEmbedding
from graphrec.nn.functional import (
    GradientSink,
    clicks_ago,
    clip_norm,
    full_softmax_cross_entropy,
    masked_attention_pool,
    mm_nt,
    sink_embedding,
    timing_signal,
)
from graphrec.nn.in_session import InSessionFeatures
from graphrec.nn.local_activation_unit import LocalActivationUnit
from graphrec.nn.mlp import MLP
from graphrec.nn.relu_self_attention import ReLUSelfAttention
from graphrec.nn.repeat_explore import RepeatExplore
from graphrec.nn.srgnn_conv import SRGNNConv

__all__ = [
    "AUGRU",
    "MLP",
    "Dice",
    "FieldEmbedding",
    "GradientSink",
    "InSessionFeatures",
    "LocalActivationUnit",
    "ReLUSelfAttention",
    "RepeatExplore",
    "SRGNNConv",
    "clicks_ago",
    "clip_norm",
    "full_softmax_cross_entropy",
    "masked_attention_pool",
    "mm_nt",
    "sink_embedding",
    "timing_signal",
]
