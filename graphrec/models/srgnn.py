"""SR-GNN: session-based recommendation with graph neural networks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.data import SessionBatch
from graphrec.models.base import RetrievalRecommender, _repeat_repr
from graphrec.nn.functional import clicks_ago
from graphrec.nn.srgnn_conv import SRGNNConv


class SRGNN(RetrievalRecommender):
    r"""SR-GNN from `"Session-based Recommendation with Graph Neural Networks"
    <https://arxiv.org/abs/1811.00855>`_ (Wu et al., AAAI 2019).

    Item embeddings :math:`\mathbf{v}_i` are refined on the session graph by
    ``num_layers`` weight-shared :class:`graphrec.nn.SRGNNConv` steps
    (eq. 1-5). The session is read out by soft attention over its clicks, with
    the last click :math:`\mathbf{v}_n` as query (eq. 6), combined with the
    last click (eq. 7), and scored against every item (eq. 8):

    .. math::
        \alpha_t &= \mathbf{q}^\top \sigma(\mathbf{W}_1 \mathbf{v}_n +
            \mathbf{W}_2 \mathbf{v}_t + \mathbf{c}), \qquad
        \mathbf{s}_g = \sum_{t=1}^{n} \alpha_t \mathbf{v}_t

        \mathbf{s}_h &= \mathbf{W}_3 [\mathbf{s}_g ; \mathbf{s}_l], \qquad
        \mathbf{s}_l = \mathbf{v}_n

        \hat{\mathbf{z}}_i &= \mathbf{s}_h^\top \mathbf{v}_i

    The sum runs over clicks (a repeated item counts once per click), and
    :math:`\mathbf{W}_3` reads :math:`[\mathbf{s}_g ; \mathbf{s}_l]` (the
    paper writes the transposed order; the two are equal up to a permutation
    of :math:`\mathbf{W}_3`), as in the reference code. Training minimises the
    cross-entropy of the softmax over the full catalogue.

    NISER+ (Gupta et al., 2019, `arXiv:1909.04276
    <https://arxiv.org/abs/1909.04276>`_) adds two things to NISER's
    normalised SR-GNN, each an option here: ``position`` gives the readout
    the order of the clicks, a learned embedding :math:`\mathbf{p}_k` of how
    many clicks ago each click was (:math:`k = 0` for the last one) added
    to its state, :math:`\mathbf{v}_t \leftarrow \mathbf{v}_t +
    \mathbf{p}_{n-t}`, before eq. 6 and 7 (the query :math:`\mathbf{v}_n`
    included); ``dropout`` drops input item embeddings before the GNN. The
    paper gives no equations for either: this is graphrec's reading of its
    text. The recipe ``"srgnn-niser-plus"`` of :data:`graphrec.models.RECIPES`
    sets the three (``dropout=0.1``).

    Args:
        num_items (int): the number of real items (ids ``1 .. num_items``).
        hidden_channels (int): embedding and hidden size :math:`d`. (default: ``100``)
        num_layers (int): gated GNN steps (weights shared). (default: ``1``)
        hybrid (bool): use :math:`\mathbf{s}_h` (eq. 7); ``False`` scores with
            :math:`\mathbf{s}_g` alone. (default: ``True``)
        repeat (bool): mix the next click's softmax with a repeat mode over the
            session's own clicks (:class:`graphrec.nn.RepeatExplore`, RepeatNet's
            mixture; the loss is its exact likelihood). (default: ``False``)
        mask_explore (bool): with ``repeat``, leave the session's items out of
            the explore softmax, as RepeatNet does. (default: ``False``)
        normalize (bool): NISER's normalisation (Gupta et al., 2019): unit item
            vectors (input and scoring) and a unit session vector. (default: ``False``)
        scale (float): with ``normalize``, the scores are ``scale`` times the
            cosine (NISER's temperature). (default: ``12``)
        position (bool): NISER+'s position embeddings: a learned vector per
            "clicks ago" is added to every click's state before the readout.
            (default: ``False``)
        max_position (int): with ``position``, the number of position vectors;
            clicks further back share the last one. (default: ``50``)
        dropout (float): NISER+'s dropout on the input item embeddings, in
            training. (default: ``0``)
        item_fields (dict, optional): ``{name: largest value id}`` of item side
            fields (brand, genres) whose vectors are summed into every item's
            vector, in the input and on the scored side alike
            (:meth:`~graphrec.models.base.RetrievalRecommender.item_table`);
            ``build_model(name, dataset)`` takes them from the data. (default: none)

    Shapes:
        - **input:** a :class:`graphrec.data.SessionBatch` of :math:`B` sessions
        - **output:** :meth:`session_embedding` :math:`(B, d)`;
          :meth:`score` :math:`(B, \text{num\_items} + 1)`, column 0 = :math:`-\infty`
    """

    reads_edge_weights = True

    def __init__(
        self,
        num_items: int,
        hidden_channels: int = 100,
        num_layers: int = 1,
        hybrid: bool = True,
        repeat: bool = False,
        mask_explore: bool = False,
        normalize: bool = False,
        scale: float = 12.0,
        position: bool = False,
        max_position: int = 50,
        dropout: float = 0.0,
        item_fields: dict[str, int] | None = None,
    ) -> None:
        super().__init__(num_items)
        if hidden_channels < 1 or num_layers < 1:
            raise ValueError("hidden_channels and num_layers must be >= 1")
        if max_position < 1:
            raise ValueError(f"max_position must be >= 1, got {max_position}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.hybrid = hybrid
        self.position, self.max_position, self.dropout = position, max_position, dropout
        self.item_embedding = nn.Embedding(num_items + 1, hidden_channels, padding_idx=0)
        self.position_embedding = nn.Embedding(max_position, hidden_channels) if position else None
        self.conv = SRGNNConv(hidden_channels)
        self.lin_query = nn.Linear(hidden_channels, hidden_channels)  # W_1, c
        self.lin_key = nn.Linear(hidden_channels, hidden_channels)  # W_2
        self.lin_attention = nn.Linear(hidden_channels, 1, bias=False)  # q
        self.lin_hybrid = nn.Linear(2 * hidden_channels, hidden_channels) if hybrid else None
        self.init_repeat(repeat, mask_explore, hidden_channels)
        self.init_normalize(normalize, scale)
        self.init_fields(hidden_channels, item_fields=item_fields)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform :math:`\\pm 1/\\sqrt{d}` everywhere (the reference), padding row zero."""
        bound = 1.0 / self.hidden_channels**0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
        self.reset_fields(bound / 3**0.5)  # the same spread, "unknown" rows zero
        if self.repeat_explore is not None:
            self.repeat_explore.reset_parameters()

    def node_states(self, batch: SessionBatch) -> Tensor:
        """``[N, d]``: item embeddings of the graph nodes after the GNN steps."""
        h = self.lookup_items(batch.x)
        if self.dropout > 0:
            h = F.dropout(h, self.dropout, self.training)
        for _ in range(self.num_layers):
            h = self.conv(h, batch.edge_index, batch.edge_weight_in, batch.edge_weight_out)
        return h

    def session_embedding(self, batch: SessionBatch) -> Tensor:
        h = self.node_states(batch)
        # index_select and index_add_ rather than h[...] and scatter: the same
        # values, with cheaper backward passes (index_add_ and index_select)
        clicks = h.index_select(0, batch.alias)  # [T, d], one row per click
        click_session = batch.click_session()
        if self.position_embedding is None:
            last = h.index_select(0, batch.last_click())  # [B, d]
        else:  # NISER+: every click's state knows how many clicks ago it was
            ptr = batch.click_ptr()
            ago = clicks_ago(click_session, ptr).clamp(max=self.max_position - 1)
            clicks = clicks + self.position_embedding(ago)
            last = clicks.index_select(0, ptr[1:] - 1)
        query = self.lin_query(last).index_select(0, click_session)
        alpha = self.lin_attention(torch.sigmoid(query + self.lin_key(clicks)))
        s_g = h.new_zeros(batch.num_sessions, h.size(1))
        s_g.index_add_(0, click_session, alpha * clicks)
        if self.lin_hybrid is None:
            return s_g
        return self.lin_hybrid(torch.cat([s_g, last], dim=-1))

    def _niser_plus_repr(self) -> str:
        text = f", position=True, max_position={self.max_position}" if self.position else ""
        return text + (f", dropout={self.dropout:g}" if self.dropout else "")

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.num_items}, "
            f"hidden_channels={self.hidden_channels}, num_layers={self.num_layers}, "
            f"hybrid={self.hybrid}{_repeat_repr(self)}{self._niser_plus_repr()}"
            f"{self.fields_repr()})"
        )
