"""DIN: deep interest network, a candidate ranker."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from graphrec.data import SessionBatch
from graphrec.models.ranking import RankingRecommender
from graphrec.nn.local_activation_unit import LocalActivationUnit
from graphrec.nn.mlp import MLP

POOLING = ("attention", "sum")


class DIN(RankingRecommender):
    r"""DIN from `"Deep Interest Network for Click-Through Rate Prediction"
    <https://arxiv.org/abs/1706.06978>`_ (Zhou et al., KDD 2018).

    The behaviours :math:`\mathbf{e}_1 \dots \mathbf{e}_L` (the session's
    clicks, after its long-term history when the batch has one; each an item
    vector concatenated with its category vector when the model has
    categories) are pooled into a user interest specific to the candidate
    :math:`\mathbf{v}_c` by the local activation unit
    (:class:`graphrec.nn.LocalActivationUnit`), eq. (3):

    .. math::
        \mathbf{v}_U(c) = \sum_{j=1}^{L} a(\mathbf{e}_j, \mathbf{v}_c)\,
            \mathbf{e}_j, \qquad
        a(\mathbf{e}_j, \mathbf{v}_c) = \mathrm{MLP}_a([\mathbf{e}_j,
            \mathbf{v}_c, \mathbf{e}_j - \mathbf{v}_c, \mathbf{e}_j \odot \mathbf{v}_c])

    with weights that are not softmax-normalised (Sec. 4.3). A prediction
    head (200-80, Dice; :class:`graphrec.nn.MLP`) scores the pair:

    .. math::
        f(s, c) = \mathrm{MLP}([\mathbf{v}_U(c),\, \mathbf{v}_c,\, \mathbf{e}_u])

    where the user vector :math:`\mathbf{e}_u` appears when the model has
    users. ``pooling="sum"`` gives the paper's base model (every weight 1:
    sum pooling, no attention).

    The paper and the authors' code (``din/model.py`` of
    ``zhougr1993/DeepInterestNetwork``) differ: the code softmax-normalises the
    weights, after dividing them by :math:`\sqrt{H}` (:math:`H` the size of an
    embedded item), uses an 80-40 sigmoid MLP in the activation unit, feeds the
    head :math:`\mathbf{v}_U \odot \mathbf{v}_c` too, and has an 80-40 head
    with sigmoid activations (Dice in ``model_dice.py``). It also
    batch-normalises the pooled interest and passes it through a dense layer,
    batch-normalises the head's input, and adds a learned bias per item to the
    logit. ``attention_softmax=True, attention_hidden=(80, 40),
    attention_activation="sigmoid", mlp_hidden=(80, 40), head_interaction=True``
    (with ``mlp_activation="sigmoid"`` or ``"dice"``) gives the code's model
    without those last four (the :math:`\sqrt{H}` scaling, the batch norms, the
    dense layer, the item bias), which graphrec does not offer; the defaults are
    the paper's.

    Training and scoring are :class:`RankingRecommender`'s (BCE against
    sampled negatives; candidates or the chunked full catalogue).

    Args:
        num_items (int): the number of real items.
        num_users (int): the largest user id (0: no user input). The unknown
            user 0 is the mean of the known users' vectors. (default: ``0``)
        num_categories (int): the largest category id (0: items only). (default: ``0``)
        hidden_channels (int): size of each embedding (item, category, user).
            (default: ``32``)
        pooling (str): ``"attention"`` (DIN) or ``"sum"`` (base model).
            (default: ``"attention"``)
        attention_hidden (tuple of int): activation unit layers. (default: ``(36,)``)
        attention_activation (str): activation unit non-linearity.
            (default: ``"dice"``)
        attention_softmax (bool): normalise the weights. (default: ``False``)
        mlp_hidden (tuple of int): prediction head layers. (default: ``(200, 80)``)
        mlp_activation (str): ``"dice"`` or ``"prelu"`` (or ``"sigmoid"``,
            ``"relu"``). (default: ``"dice"``)
        head_interaction (bool): also feed :math:`\mathbf{v}_U(c) \odot
            \mathbf{v}_c` to the head, as the authors' code does. (default: ``False``)
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
        pooling: str = "attention",
        attention_hidden: tuple[int, ...] = (36,),
        attention_activation: str = "dice",
        attention_softmax: bool = False,
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
        if pooling not in POOLING:
            raise ValueError(f"pooling must be one of {POOLING}, got {pooling!r}")
        self.pooling = pooling
        self.attention_hidden = tuple(attention_hidden)
        self.attention_activation = attention_activation
        self.attention_softmax = attention_softmax
        self.mlp_hidden = tuple(mlp_hidden)
        self.mlp_activation = mlp_activation
        self.head_interaction = head_interaction
        d = self.item_channels
        self.attention = (
            LocalActivationUnit(d, self.attention_hidden, attention_activation, attention_softmax)
            if pooling == "attention"
            else None
        )
        width = (3 if head_interaction else 2) * d + self.user_channels
        width += self.session_channels
        self.mlp = MLP(width, self.mlp_hidden, 1, mlp_activation)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.reset_embeddings()
        if self.attention is not None:
            self.attention.reset_parameters()
        self.mlp.reset_parameters()

    def encode(self, batch: SessionBatch) -> dict[str, Any]:
        state = super().encode(batch)
        mask = state["mask"]
        state["index"] = torch.arange(mask.size(0), device=mask.device).repeat_interleave(
            mask.sum(1)
        )  # the session of each real behaviour, for the packed activation unit
        return state

    def interest(self, state: dict[str, Any], candidates: Tensor) -> Tensor:
        """``[B, C, item_channels]``: the pooled behaviours per embedded
        candidate (``candidates``: ``[B, C, item_channels]``)."""
        e, mask = state["behaviours"], state["mask"]
        if self.attention is None:
            return state["pooled"].expand(-1, candidates.size(1), -1)
        packed, index = e[mask], state["index"]  # real behaviours only
        weights = self.attention(packed, candidates, index)  # [T, C]
        out = candidates.new_zeros((*candidates.shape[:2], packed.size(-1)))
        return out.index_add_(0, index, weights.unsqueeze(-1) * packed.unsqueeze(1))

    def logits(self, state: dict[str, Any], candidates: Tensor) -> Tensor:
        v = self.embed_items(candidates)
        interest = self.interest(state, v)
        features = [interest, v]
        if self.head_interaction:
            features.append(interest * v)
        return self.head(state, features, candidates)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.num_items}, num_users={self.num_users}, "
            f"num_categories={self.num_categories}, hidden_channels={self.hidden_channels}, "
            f"pooling={self.pooling!r}{self.fields_repr()}{self.session_repr()})"
        )
