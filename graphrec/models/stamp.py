"""STAMP: short-term attention/memory priority model."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

from graphrec.data import SessionBatch
from graphrec.models.base import RetrievalRecommender, _repeat_repr
from graphrec.nn.functional import clip_norm

VARIANTS = ("paper", "code")


class STAMP(RetrievalRecommender):
    r"""STAMP from `"STAMP: Short-Term Attention/Memory Priority Model for
    Session-based Recommendation" <https://doi.org/10.1145/3219819.3219950>`_
    (Liu et al., KDD 2018).

    Reads the session as its chain of clicks :math:`\mathbf{x}_1 \dots
    \mathbf{x}_t` (item embeddings). With the general interest
    :math:`\mathbf{m}_s = \frac{1}{t} \sum_i \mathbf{x}_i` and the last click
    :math:`\mathbf{m}_t = \mathbf{x}_t`:

    .. math::
        \alpha_i &= \mathbf{w}_0^\top \sigma(\mathbf{W}_1 \mathbf{x}_i +
            \mathbf{W}_2 \mathbf{x}_t + \mathbf{W}_3 \mathbf{m}_s + \mathbf{b}_a),
        \qquad \mathbf{m}_a = \sum_{i=1}^{t} \alpha_i \mathbf{x}_i

        \mathbf{h}_s &= \tanh(\mathbf{W}_s \mathbf{m}_a + \mathbf{b}_s), \qquad
        \mathbf{h}_t = \tanh(\mathbf{W}_t \mathbf{m}_t + \mathbf{b}_t)

        \hat{z}_i &= \mathbf{x}_i^\top (\mathbf{h}_s \odot \mathbf{h}_t)

    (eq. 6-9; the attention weights are not softmax-normalised, as in the
    paper), and the softmax cross-entropy of :math:`\hat{\mathbf{z}}` over the
    whole catalogue is minimised. The paper puts a sigmoid on the
    trilinear product before that softmax; neither variant has it: with it every
    logit would lie in :math:`(0, 1)`, so the softmax could favour the best item
    over the worst by a factor of at most :math:`e`, and the score would no longer
    be an inner product. The published figures are reproduced without it (below),
    and the authors' code has none either. The trilinear score is an inner
    product with the session vector :math:`\mathbf{h}_s \odot \mathbf{h}_t`, so
    the model is a retrieval model (faiss-searchable).

    ``variant="code"`` is the authors' public TensorFlow code instead: the
    tanh layer reads :math:`\mathbf{m}_a + \mathbf{m}_s`; the attention has no
    bias :math:`\mathbf{b}_a` (their ``FwNnAttLayer`` sums three bias-free
    linear maps) and :math:`\mathbf{W}_s`, :math:`\mathbf{W}_t` none either; and
    input embeddings are clipped to an L2 norm of at most ``max_norm`` when
    looked up (the output table is not clipped): 1.5 in their Diginetica script
    (``STAMP_cikm.py``), 1 in their YooChoose one (``STAMP_rsc.py``). The
    authors trained with Adam, learning rate 0.003, batches of 512,
    gradient-norm clipping at 110 (Diginetica) or 150 (YooChoose), 10 epochs;
    both variants initialise embeddings from :math:`\mathcal{N}(0, 0.002^2)` and
    weights from :math:`\mathcal{N}(0, 0.05^2)`.

    **The paper variant reproduces the published figures**: on YooChoose 1/64,
    selected on validation and refit, HR@20 68.82 / MRR@20 29.85 against the
    paper's 68.74 / 29.67; the code variant scored 1.35 HR@20 points below the
    paper variant under the same protocol (measurements in the tutorial
    "Sequential recommendation on Amazon Games", section "STAMP: paper or code";
    taken when the code variant still had the attention bias
    :math:`\mathbf{b}_a`, which starts at zero).

    Args:
        num_items (int): the number of real items (ids ``1 .. num_items``).
        hidden_channels (int): embedding size :math:`d`. (default: ``100``)
        variant (str): ``"paper"`` or ``"code"``. (default: ``"paper"``)
        max_norm (float, optional): the input-embedding clip of the code
            variant: 1.5 in the authors' Diginetica script, 1 in their
            YooChoose one. (default: ``1.5``)
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
            fields (brand, genres) whose vectors are summed into every item's
            vector, in the input and on the scored side alike
            (:meth:`~graphrec.models.base.RetrievalRecommender.item_table`);
            ``build_model(name, dataset)`` takes them from the data. (default: none)

    Shapes:
        - **input:** a :class:`graphrec.data.SessionBatch` of :math:`B` sessions
        - **output:** :meth:`session_embedding` :math:`(B, d)`;
          :meth:`score` :math:`(B, \text{num\_items} + 1)`, column 0 = :math:`-\infty`
    """

    def __init__(
        self,
        num_items: int,
        hidden_channels: int = 100,
        variant: str = "paper",
        max_norm: float | None = 1.5,
        repeat: bool = False,
        mask_explore: bool = False,
        normalize: bool = False,
        scale: float = 12.0,
        item_fields: dict[str, int] | None = None,
    ) -> None:
        super().__init__(num_items)
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if hidden_channels < 1:
            raise ValueError(f"hidden_channels must be >= 1, got {hidden_channels}")
        self.hidden_channels = hidden_channels
        self.variant = variant
        self.max_norm = max_norm
        d = hidden_channels
        bias = variant == "paper"
        self.item_embedding = nn.Embedding(num_items + 1, d, padding_idx=0)
        self.lin_click = nn.Linear(d, d, bias=False)  # W_1
        self.lin_last = nn.Linear(d, d, bias=False)  # W_2
        self.lin_mean = nn.Linear(d, d, bias=bias)  # W_3 (b_a: the paper's only)
        self.lin_attention = nn.Linear(d, 1, bias=False)  # w_0
        self.lin_session = nn.Linear(d, d, bias=bias)  # W_s (b_s)
        self.lin_target = nn.Linear(d, d, bias=bias)  # W_t (b_t)
        self.init_repeat(repeat, mask_explore, d)
        self.init_normalize(normalize, scale)
        self.init_fields(d, item_fields=item_fields)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Embeddings N(0, 0.002²), weights N(0, 0.05²), biases 0; padding row zero."""
        nn.init.normal_(self.item_embedding.weight, std=0.002)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
        self.reset_fields(0.002)
        for lin in (self.lin_click, self.lin_last, self.lin_mean, self.lin_attention):
            nn.init.normal_(lin.weight, std=0.05)
        for lin in (self.lin_session, self.lin_target):
            nn.init.normal_(lin.weight, std=0.05)
        for lin in (self.lin_mean, self.lin_session, self.lin_target):
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)

    def session_embedding(self, batch: SessionBatch) -> Tensor:
        num_sessions = batch.num_sessions
        click_session = batch.click_session()
        x = self.lookup_items(batch.x[batch.alias])  # [T, d], the chain's clicks
        if self.variant == "code":
            x = clip_norm(x, self.max_norm)
        last = x[batch.click_ptr()[1:] - 1]  # m_t = x_t
        m_s = scatter(x, click_session, dim=0, dim_size=num_sessions, reduce="mean")
        hidden = torch.sigmoid(
            self.lin_click(x) + (self.lin_last(last) + self.lin_mean(m_s))[click_session]
        )
        alpha = self.lin_attention(hidden)  # [T, 1], no softmax
        m_a = scatter(alpha * x, click_session, dim=0, dim_size=num_sessions, reduce="sum")
        if self.variant == "code":
            m_a = m_a + m_s
        return torch.tanh(self.lin_session(m_a)) * torch.tanh(self.lin_target(last))

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.num_items}, "
            f"hidden_channels={self.hidden_channels}, variant={self.variant!r}"
            f"{_repeat_repr(self)}{self.fields_repr()})"
        )
