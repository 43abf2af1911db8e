"""DIEN: deep interest evolution network, a candidate ranker."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.data import SessionBatch
from graphrec.models.ranking import RankingRecommender
from graphrec.nn.augru import AUGRU
from graphrec.nn.mlp import MLP

AUXILIARY = ("inner", "mlp")


class DIEN(RankingRecommender):
    r"""DIEN from `"Deep Interest Evolution Network for Click-Through Rate
    Prediction" <https://arxiv.org/abs/1809.03672>`_ (Zhou et al., AAAI 2019).

    **Interest extractor**: a GRU over the behaviours
    :math:`\mathbf{e}_1 \dots \mathbf{e}_L` (the session's clicks, after its
    long-term history when the batch has one; item vector concatenated with
    its category vector when the model has categories) gives interest states
    :math:`\mathbf{h}_1 \dots \mathbf{h}_L` of the same size, supervised by the
    **auxiliary loss**: each :math:`\mathbf{h}_t` should tell the true next
    behaviour :math:`\mathbf{e}_{t+1}` from a sampled one
    :math:`\hat{\mathbf{e}}_{t+1}` (eq. 6),

    .. math::
        \mathcal{L}_{aux} = -\frac{1}{|T|} \sum_{(b, t) \in T}
            \Big(\log \sigma(\mathbf{h}_t^\top \mathbf{e}_{t+1})
            + \log\big(1 - \sigma(\mathbf{h}_t^\top \hat{\mathbf{e}}_{t+1})\big)\Big)

    averaged over the set :math:`T` of real positions that have a real next
    behaviour (padding and each row's last position never count). The
    negative :math:`\hat{\mathbf{e}}_{t+1}` is an item drawn uniformly from
    the catalogue without the clicked :math:`i_{t+1}` (the paper's "item set
    except the clicked one").

    **Interest evolving layer**: attention of each state on the candidate
    :math:`\mathbf{v}_c`, softmax over the real positions (eq. 5), drives an
    :class:`graphrec.nn.AUGRU` whose final state is the evolved interest:

    .. math::
        a_t = \frac{\exp(\mathbf{h}_t^\top \mathbf{W} \mathbf{v}_c)}
            {\sum_{j} \exp(\mathbf{h}_j^\top \mathbf{W} \mathbf{v}_c)}, \qquad
        \mathbf{h}'_L = \mathrm{AUGRU}(\mathbf{h}_{1..L}, a_{1..L})

    and the prediction head (200-80, Dice) scores
    :math:`[\mathbf{h}'_L, \mathbf{v}_c, \mathbf{e}_u]` (the user vector when
    the model has users). Loss: target BCE :math:`+\ \alpha\,\mathcal{L}_{aux}`.

    Variable lengths: the GRU and AUGRU run over left-aligned sequences, and
    a padded step never changes a state, so padding has no effect on any
    output or loss.

    The authors' code (``script/model.py`` and ``script/utils.py`` of
    ``mouna99/dien``) differs from the paper in five places. Its auxiliary
    network is an MLP (100-50, sigmoid) over :math:`[\mathbf{h}_t, \mathbf{e}]`
    instead of the inner product (``auxiliary="mlp"``), and its negatives are
    other users' clicks. Its head also reads the sum-pooled behaviours and their
    product with the candidate (``head_interaction=True``). Its attention is not
    the bilinear :math:`\mathbf{h}_t^\top \mathbf{W} \mathbf{v}_c` but DIN's MLP
    unit (``din_fcn_attention``: the candidate through a dense layer and a
    PReLU, then :math:`[\mathbf{q}, \mathbf{h}_t, \mathbf{q} - \mathbf{h}_t,
    \mathbf{q} \odot \mathbf{h}_t]` through an 80-40 sigmoid MLP, softmax over
    the positions). And its AUGRU (``VecAttGRUCell``) scales the gate that keeps
    the old state, :math:`\mathbf{h}_t = \mathbf{u}' \mathbf{h}_{t-1} + (1 -
    \mathbf{u}') \tilde{\mathbf{h}}_t` with :math:`\mathbf{u}' = (1 - a_t)
    \mathbf{u}_t`: a behaviour of attention 0 gets an ordinary GRU step, where
    the paper's :math:`\tilde{\mathbf{u}}_t = a_t \mathbf{u}_t` leaves the
    state as it was. graphrec offers the first two as options; the attention and
    the gating are the paper's. The defaults are the paper's.

    Args:
        num_items (int): the number of real items.
        num_users (int): the largest user id (0: no user input). The unknown
            user 0 is the mean of the known users' vectors. (default: ``0``)
        num_categories (int): the largest category id (0: items only). (default: ``0``)
        hidden_channels (int): size of each embedding (item, category, user);
            the GRU states have the size of an embedded item. (default: ``32``)
        aux_weight (float): :math:`\alpha` (0 disables the auxiliary loss).
            (default: ``1.0``)
        auxiliary (str): ``"inner"`` (paper) or ``"mlp"`` (code). (default: ``"inner"``)
        mlp_hidden (tuple of int): prediction head layers. (default: ``(200, 80)``)
        mlp_activation (str): ``"dice"`` or ``"prelu"`` (or ``"sigmoid"``,
            ``"relu"``). (default: ``"dice"``)
        head_interaction (bool): also feed the head the sum of the behaviours
            :math:`\mathbf{s}` and :math:`\mathbf{s} \odot \mathbf{v}_c`, as
            the authors' code does. (default: ``False``)
        num_negatives (int): negatives per target in training. (default: ``1``)
        negative_sampling (str): ``"uniform"``, ``"popularity"`` or ``"hard"``.
            (default: ``"uniform"``)
        hard_k (int): hard negatives come from the retriever's top-``hard_k``.
            (default: ``100``)
        item_fields (dict, optional): ``{name: largest value id}`` of item side
            fields, each embedded and concatenated to every behaviour and
            candidate. (default: none)
        user_fields (dict, optional): user profile fields (needs ``num_users``),
            into the head. (default: none)
        context_fields (dict, optional): context fields of the sample (the
            batch's ``context_<name>``), into the head. (default: none)
        field_channels (int, optional): size of each side field's vector
            (default: ``hidden_channels``, the paper's layout, where a behaviour
            grows by ``hidden_channels`` per item field). A smaller one keeps
            the behaviour narrow, as the authors' code does (DIN's gives the
            item and its category half of the width each).
        session_features (bool): give the head whether the candidate is in the
            session, how often and how recently
            (:class:`graphrec.nn.InSessionFeatures`), and draw one more negative
            per target among the session's other clicks, so that it learns when
            a repeat is the next click. Not in the paper: the
            repeat signal for re-ranking a repeat-aware retriever's candidates.
            (default: ``False``)

    Shapes:
        - **input:** a :class:`graphrec.data.SessionBatch` (optional ``user``,
          ``history``), candidates :math:`(B, C)`
        - **output:** :meth:`score` :math:`(B, C)` logits, or
          :math:`(B, \text{num\_items} + 1)` without candidates
    """

    def __init__(
        self,
        num_items: int,
        num_users: int = 0,
        num_categories: int = 0,
        hidden_channels: int = 32,
        aux_weight: float = 1.0,
        auxiliary: str = "inner",
        mlp_hidden: tuple[int, ...] = (200, 80),
        mlp_activation: str = "dice",
        head_interaction: bool = False,
        num_negatives: int = 1,
        negative_sampling: str = "uniform",
        hard_k: int = 100,
        item_fields: dict[str, int] | None = None,
        user_fields: dict[str, int] | None = None,
        context_fields: dict[str, int] | None = None,
        field_channels: int | None = None,
        session_features: bool = False,
    ) -> None:
        super().__init__(
            num_items,
            num_users,
            num_categories,
            hidden_channels,
            num_negatives,
            negative_sampling,
            hard_k,
            item_fields,
            user_fields,
            context_fields,
            field_channels,
            session_features,
        )
        if auxiliary not in AUXILIARY:
            raise ValueError(f"auxiliary must be one of {AUXILIARY}, got {auxiliary!r}")
        if aux_weight < 0:
            raise ValueError(f"aux_weight must be >= 0, got {aux_weight}")
        self.aux_weight = aux_weight
        self.auxiliary = auxiliary
        self.mlp_hidden = tuple(mlp_hidden)
        self.mlp_activation = mlp_activation
        self.head_interaction = head_interaction
        d = self.item_channels
        self.gru = nn.GRU(d, d, batch_first=True)
        self.aux_mlp = MLP(2 * d, (100, 50), 1, "sigmoid") if auxiliary == "mlp" else None
        self.attention_weight = nn.Parameter(torch.empty(d, d))  # W of eq. (5)
        self.augru = AUGRU(d, d)
        width = (4 if head_interaction else 2) * d + self.user_channels
        width += self.session_channels
        self.mlp = MLP(width, self.mlp_hidden, 1, mlp_activation)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.reset_embeddings()
        self.gru.reset_parameters()
        if self.aux_mlp is not None:
            self.aux_mlp.reset_parameters()
        nn.init.uniform_(self.attention_weight, -1 / math.sqrt(self.item_channels),
                         1 / math.sqrt(self.item_channels))  # fmt: skip
        self.augru.reset_parameters()
        self.mlp.reset_parameters()

    def encode(self, batch: SessionBatch) -> dict[str, Any]:
        state = super().encode(batch)
        # left-aligned: padding comes after every real step
        state["states"], _ = self.gru(state["behaviours"])
        return state

    def attention(self, state: dict[str, Any], candidates: Tensor) -> Tensor:
        """``[B, C, L]``: :math:`a_t` per embedded candidate, 0 on padding."""
        h, mask = state["states"], state["mask"]
        logits = (h @ self.attention_weight) @ candidates.transpose(1, 2)  # [B, L, C]
        logits = logits.transpose(1, 2).masked_fill(~mask.unsqueeze(1), -math.inf)
        return torch.softmax(logits, dim=-1)

    def logits(self, state: dict[str, Any], candidates: Tensor) -> Tensor:
        v = self.embed_items(candidates)
        evolved = self.augru(state["states"], self.attention(state, v), state["mask"].sum(1))
        features = [evolved, v]
        if self.head_interaction:  # the code's sum-pooled behaviours and their product
            pooled = state["pooled"]
            features += [pooled.expand_as(v), pooled * v]
        return self.head(state, features, candidates)

    def auxiliary_logits(self, states: Tensor, targets: Tensor) -> Tensor:
        """``[N]``: how well states ``[N, d]`` predict embedded behaviours ``[N, d]``."""
        if self.aux_mlp is None:
            return (states * targets).sum(-1)
        return self.aux_mlp(torch.cat([states, targets], dim=-1)).squeeze(-1)

    def auxiliary_loss(self, state: dict[str, Any], batch: SessionBatch) -> Tensor | None:
        if self.aux_weight == 0:
            return None
        items, mask = state["items"], state["mask"]
        real = mask[:, 1:]  # positions t with a real next behaviour t + 1
        if not bool(real.any()):
            return None
        h = state["states"][:, :-1][real]
        positive = state["behaviours"][:, 1:][real]
        next_item = items[:, 1:][real]
        with torch.no_grad():  # uniform over the catalogue without the clicked item
            draw = torch.randint(1, self.num_items, next_item.shape, device=next_item.device)
            negative_item = draw + (draw >= next_item).long()
        negative = self.embed_items(negative_item)
        pos = self.auxiliary_logits(h, positive)
        neg = self.auxiliary_logits(h, negative)
        loss = F.binary_cross_entropy_with_logits(
            pos, torch.ones_like(pos), reduction="sum"
        ) + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg), reduction="sum")
        return self.aux_weight * loss / pos.numel()

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.num_items}, num_users={self.num_users}, "
            f"num_categories={self.num_categories}, hidden_channels={self.hidden_channels}, "
            f"aux_weight={self.aux_weight}, auxiliary={self.auxiliary!r}"
            f"{self.fields_repr()}{self.session_repr()})"
        )
