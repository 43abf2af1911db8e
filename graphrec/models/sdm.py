"""SDM: sequential deep matching of short- and long-term preferences."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from graphrec.data import SessionBatch
from graphrec.models.base import RetrievalRecommender, _repeat_repr, batch_users, user_vectors
from graphrec.nn.functional import masked_attention_pool

SOFTMAX = ("full", "sampled")


class SDM(RetrievalRecommender):
    r"""SDM from `"SDM: Sequential Deep Matching Model for Online Large-scale
    Recommender System" <https://arxiv.org/abs/1909.00385>`_ (Lv et al., CIKM 2019).

    **Short term** (the session's clicks, each embedded as its item, concatenated
    with its category when the model has categories): an LSTM, multi-head
    self-attention over its outputs, then attention with the user embedding
    :math:`\mathbf{e}_u` as query:

    .. math::
        \mathbf{h}_1 \dots \mathbf{h}_t &= \mathrm{LSTM}(\mathbf{e}_{i_1}
            \dots \mathbf{e}_{i_t}), \qquad
        \hat{\mathbf{h}}_1 \dots \hat{\mathbf{h}}_t =
            \mathrm{MultiHead}(\mathbf{h}, \mathbf{h}, \mathbf{h})

        \mathbf{s}_t &= \sum_k \alpha_k \hat{\mathbf{h}}_k, \qquad
            \alpha_k = \mathrm{softmax}_k(\mathbf{e}_u^\top \hat{\mathbf{h}}_k)

    **Long term** (the batch's ``history``: earlier behaviour, item ids and,
    with categories, their categories): attention with :math:`\mathbf{e}_u`
    as query over each feature's embeddings, concatenated, then a dense layer:

    .. math::
        \mathbf{z}^f = \sum_k \mathrm{softmax}_k(\mathbf{e}_u^\top \mathbf{g}^f_k)\,
            \mathbf{g}^f_k, \qquad
        \mathbf{p}_u = \tanh(\mathbf{W}^p [\mathbf{z}^{item}; \mathbf{z}^{cat}] + \mathbf{b})

    **Gated fusion**, scored by inner product with the item embeddings:

    .. math::
        G = \sigma(\mathbf{W}_1 \mathbf{e}_u + \mathbf{W}_2 \mathbf{s}_t +
            \mathbf{W}_3 \mathbf{p}_u + \mathbf{b}), \qquad
        \mathbf{o} = (1 - G) \odot \mathbf{p}_u + G \odot \mathbf{s}_t

    A session with an empty history (or a batch without one: session
    datasets) takes :math:`\mathbf{o} = \mathbf{s}_t`, the gate never sees a
    meaningless :math:`\mathbf{p}_u`. User 0, and every session of a batch
    without ``user``, is the learned "unknown user" row of the user table.

    **Side fields.** The paper embeds a click as the *concatenation* of its
    item id, leaf category, first-level category, shop and brand vectors
    (Sec. 3.2), and runs the long-term attention once per field (the
    :math:`\mathbf{z}^f` above): ``num_categories`` and ``item_fields`` add
    those features. Each multi-valued field (a movie's genres) is the mean of
    its values' vectors. On the scored side an item is its own vector plus the
    sum of its fields' vectors, as for every retrieval model
    (:meth:`~graphrec.models.base.RetrievalRecommender.item_table`), so that
    the score stays one inner product. ``user_fields`` build
    :math:`\mathbf{e}_u` from the profile (age, gender, life stage in the
    paper): :math:`\mathbf{e}_u = \mathbf{W}^u [\mathbf{u}; \mathbf{e}^{age};
    \mathbf{e}^{gender}; \dots] + \mathbf{b}^u`, a dense layer to :math:`d`,
    so that it can still serve as the attention query. The paper does not say
    how its profile vectors are combined. Context fields are not an input of SDM.

    Training minimises the exact full-catalogue softmax cross-entropy
    (``softmax="full"``, the default) or, as in the paper, a sampled softmax
    (``"sampled"``: ``num_sampled`` items drawn uniformly per batch, shared by
    its sessions, accidental hits of the target removed; a uniform sampler
    needs no log-Q correction). The authors' code applies the loss at every
    position of a user's sequence; graphrec's prefix-augmented samples train
    on the same (prefix, next item) pairs, one sample each, through the one
    batch.

    Args:
        num_items (int): the number of real items.
        num_users (int): the largest user id (0: only the unknown user, one learned
            vector). With users, the unknown user 0 (a user never seen in
            training) is the mean of the known users' vectors. (default: ``0``)
        num_categories (int): the largest category id (0: no categories). (default: ``0``)
        hidden_channels (int): embedding and hidden size :math:`d`. (default: ``64``)
        num_heads (int): self-attention heads. (default: ``2``)
        num_layers (int): LSTM layers. (default: ``1``)
        softmax (str): ``"full"`` or ``"sampled"``. (default: ``"full"``)
        num_sampled (int): negatives of the sampled softmax. (default: ``100``)
        repeat (bool): mix the next click's softmax with a repeat mode over the
            session's own clicks (:class:`graphrec.nn.RepeatExplore`, RepeatNet's
            mixture; the loss is its exact likelihood). (default: ``False``)
        mask_explore (bool): with ``repeat``, leave the session's items out of
            the explore softmax, as RepeatNet does. (default: ``False``)
        normalize (bool): NISER's normalisation (Gupta et al., 2019): unit item
            vectors (input and scoring) and a unit session vector. (default: ``False``)
        scale (float): with ``normalize``, the scores are ``scale`` times the
            cosine (NISER's temperature). (default: ``12``)
        item_fields (dict, optional): ``{name: largest value id}`` of item side
            fields (the paper's leaf and first-level category, shop, brand):
            concatenated to each click's input, and one more long-term
            attention each (``build_model`` takes them from the data). (default: none)
        user_fields (dict, optional): user profile fields (the paper's age,
            gender, life stage; needs ``num_users``): :math:`\mathbf{e}_u` is
            then a dense layer over the user vector and the profile vectors,
            concatenated. (default: none)

    Shapes:
        - **input:** a :class:`graphrec.data.SessionBatch` (optional ``user``,
          ``history``/``history_length``; the clicks' categories are looked up in
          the model's ``item_category``, set from the training data)
        - **output:** :meth:`session_embedding` :math:`(B, d)`;
          :meth:`score` :math:`(B, \text{num\_items} + 1)`
    """

    reads_history = True

    def __init__(
        self,
        num_items: int,
        num_users: int = 0,
        num_categories: int = 0,
        hidden_channels: int = 64,
        num_heads: int = 2,
        num_layers: int = 1,
        softmax: str = "full",
        num_sampled: int = 100,
        repeat: bool = False,
        mask_explore: bool = False,
        normalize: bool = False,
        scale: float = 12.0,
        item_fields: dict[str, int] | None = None,
        user_fields: dict[str, int] | None = None,
    ) -> None:
        super().__init__(num_items)
        if softmax not in SOFTMAX:
            raise ValueError(f"softmax must be one of {SOFTMAX}, got {softmax!r}")
        if hidden_channels % num_heads:
            raise ValueError(f"hidden_channels={hidden_channels} is not a multiple of num_heads")
        if num_users < 0 or num_categories < 0 or num_layers < 1 or num_sampled < 1:
            raise ValueError("num_users/num_categories >= 0, num_layers/num_sampled >= 1")
        self.num_users = num_users
        self.num_categories = num_categories
        self.hidden_channels = hidden_channels
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.softmax = softmax
        self.num_sampled = num_sampled
        d = hidden_channels
        self.init_fields(d, item_fields=item_fields, user_fields=user_fields)
        features = 1 + bool(num_categories) + len(self.item_fields)
        self.item_embedding = nn.Embedding(num_items + 1, d, padding_idx=0)
        self.category_embedding = (
            nn.Embedding(num_categories + 1, d, padding_idx=0) if num_categories else None
        )
        self.user_embedding = nn.Embedding(num_users + 1, d)  # row 0: unknown user
        self.lstm = nn.LSTM(features * d, d, num_layers=num_layers, batch_first=True)
        self.self_attention = nn.MultiheadAttention(d, num_heads, batch_first=True)
        self.lin_long = nn.Linear(features * d, d)  # W^p, b
        self.lin_gate_user = nn.Linear(d, d, bias=False)  # W_1
        self.lin_gate_short = nn.Linear(d, d, bias=False)  # W_2
        self.lin_gate_long = nn.Linear(d, d)  # W_3, b
        # e_u from the user vector and the profile fields (SDM Sec. 3.2)
        self.lin_user = nn.Linear((1 + len(self.user_fields)) * d, d) if self.user_fields else None
        if num_categories:
            self.register_buffer("item_category", torch.zeros(num_items + 1, dtype=torch.long))
        else:
            self.item_category = None
        if repeat and softmax != "full":
            raise ValueError("repeat=True needs softmax='full' (the mixture's exact likelihood)")
        self.init_repeat(repeat, mask_explore, d)
        self.init_normalize(normalize, scale)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Embeddings uniform ±1/√d, padding rows zero; the layers' own initialisation."""
        bound = 1.0 / math.sqrt(self.hidden_channels)
        for emb in (self.item_embedding, self.category_embedding, self.user_embedding):
            if emb is not None:
                nn.init.uniform_(emb.weight, -bound, bound)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
            if self.category_embedding is not None:
                self.category_embedding.weight[0].zero_()
        self.lstm.reset_parameters()
        self.self_attention._reset_parameters()
        for lin in (self.lin_long, self.lin_gate_user, self.lin_gate_short, self.lin_gate_long):
            lin.reset_parameters()
        if self.lin_user is not None:
            self.lin_user.reset_parameters()
        self.reset_fields(bound / math.sqrt(3))
        if self.repeat_explore is not None:
            self.repeat_explore.reset_parameters()

    def _embed(self, items: list[Tensor]) -> list[list[Tensor]]:
        """Embeddings of several id tensors, one table lookup per feature.

        A click's category is its item's, from the ``item_category`` table the
        model keeps (set from the training data, saved in checkpoints): the one
        source of categories in training, evaluation and ``recommend``, as for
        DIN and DIEN; the categories a batch may carry are not read. One lookup
        per table keeps the backward pass to one gradient of the table instead of
        one per call.

        Returns:
            For each id tensor, its features: ``[item]``, then the category and
            each item field where the model has them.
        """
        tables = [(self.item_embedding, items)]
        if self.category_embedding is not None:
            tables.append((self.category_embedding, [self.item_category[i] for i in items]))
        sizes = [i.numel() for i in items]
        per_feature = []
        for table, ids in tables:
            flat_ids = torch.cat([i.reshape(-1) for i in ids])
            # the item table through lookup_items: a sparse gradient inside the full-softmax loss
            # (the item's own vector: its fields follow as features of their own)
            item = table is self.item_embedding
            flat = self.lookup_items(flat_ids, with_fields=False) if item else table(flat_ids)
            per_feature.append(flat)
        if self.item_field_embedding is not None:  # one lookup per field, every id tensor at once
            per_feature += self.item_field_embedding(torch.cat([i.reshape(-1) for i in items]))
        d = self.hidden_channels
        return [
            [flat.split(sizes)[n].view(*i.shape, d) for flat in per_feature]
            for n, i in enumerate(items)
        ]

    def user_query(self, batch: SessionBatch) -> Tensor:
        """``[B, d]``: :math:`\\mathbf{e}_u`, the user vector (the unknown user 0
        the mean of the known ones), through a dense layer with the profile
        fields' vectors when the model has user fields."""
        users = batch_users(batch, self.num_users)
        user = user_vectors(self.user_embedding, users, self.num_users)
        if self.lin_user is None:
            return user
        return self.lin_user(torch.cat([user, *self.user_field_vectors(users)], dim=-1))

    def short_term(self, batch: SessionBatch, user: Tensor, features: list[Tensor]) -> Tensor:
        """``[B, d]``: :math:`\\mathbf{s}_t` from the embedded clicks (item, category)."""
        _, mask = batch.sequences()
        x = torch.cat(features, dim=-1)
        if torch.compiler.is_exporting():
            # one direction: the states of the real clicks do not depend on the
            # padding after them, and the padded ones are masked below
            h = self.lstm(x)[0]
        else:
            lengths = mask.sum(1)
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            h, _ = pad_packed_sequence(
                self.lstm(packed)[0], batch_first=True, total_length=x.size(1)
            )
        h_hat, _ = self.self_attention(h, h, h, key_padding_mask=~mask, need_weights=False)
        return masked_attention_pool(user, h_hat, mask)

    def long_term(self, user: Tensor, features: list[Tensor], mask: Tensor) -> Tensor:
        """``[B, d]``: :math:`\\mathbf{p}_u` from the embedded history (item, category)."""
        z = [masked_attention_pool(user, g, mask) for g in features]
        return torch.tanh(self.lin_long(torch.cat(z, dim=-1)))

    def session_embedding(self, batch: SessionBatch) -> Tensor:
        user = self.user_query(batch)
        items, _ = batch.sequences()
        if "history_length" not in batch:
            (short,) = self._embed([items])
            return self.short_term(batch, user, short)
        history, history_mask = batch.histories()
        short, long = self._embed([items, history])
        s_t = self.short_term(batch, user, short)
        p_u = self.long_term(user, long, history_mask)
        gate = torch.sigmoid(
            self.lin_gate_user(user) + self.lin_gate_short(s_t) + self.lin_gate_long(p_u)
        )
        fused = (1 - gate) * p_u + gate * s_t
        # an empty history gives no p_u: the gate never sees it, o = s_t
        return torch.where((batch.history_length > 0).unsqueeze(1), fused, s_t)

    def loss(self, batch: SessionBatch) -> Tensor:
        if self.softmax == "full":
            return super().loss(batch)
        s = self.session_embedding(batch)
        sampled = torch.randint(1, self.num_items + 1, (self.num_sampled,), device=s.device)
        weight = self.item_embedding.weight
        target_logit = (s * weight[batch.y]).sum(-1, keepdim=True)
        sampled_logits = (s @ weight[sampled].t()).masked_fill(
            sampled.unsqueeze(0) == batch.y.unsqueeze(1), float("-inf")
        )
        logits = torch.cat([target_logit, sampled_logits], dim=1)
        return F.cross_entropy(logits, torch.zeros_like(batch.y))

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.num_items}, num_users={self.num_users}, "
            f"num_categories={self.num_categories}, hidden_channels={self.hidden_channels}, "
            f"num_heads={self.num_heads}, softmax={self.softmax!r}{_repeat_repr(self)}"
            f"{self.fields_repr()})"
        )
