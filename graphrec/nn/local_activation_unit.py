"""The local activation unit of DIN: candidate-aware weights of behaviours."""

from __future__ import annotations

import itertools

from torch import Tensor, nn
from torch_geometric.utils import softmax

from graphrec.nn.dice import ACTIVATIONS, make_activation


class LocalActivationUnit(nn.Module):
    r"""The local activation unit from `"Deep Interest Network for
    Click-Through Rate Prediction" <https://arxiv.org/abs/1706.06978>`_
    (Zhou et al., KDD 2018), Sec. 4.3 and Fig. 2.

    Weighs every behaviour :math:`\mathbf{e}_j` of a user against a candidate
    :math:`\mathbf{v}` with a small MLP over both and their interactions:

    .. math::
        a(\mathbf{e}_j, \mathbf{v}) = \mathrm{MLP}\big([\mathbf{e}_j,\,
            \mathbf{v},\, \mathbf{e}_j - \mathbf{v},\,
            \mathbf{e}_j \odot \mathbf{v}]\big)

    The weights are **not** normalised (``softmax=False``, the paper: "the
    normalization ... is abandoned ... to reserve the intensity of user
    interests"); with ``softmax=True`` they are softmax-normalised over the
    behaviours of the session, as in the authors' code.

    Behaviours come packed, PyG style: the real behaviours of all sessions
    concatenated, with ``index`` naming each one's session, so no padding
    is ever computed (sessions of very different lengths cost their real
    lengths).

    The first layer is applied without materialising the
    :math:`B \times C \times L \times 4d` input: with
    :math:`\mathbf{W} = [\mathbf{W}_e, \mathbf{W}_v, \mathbf{W}_-, \mathbf{W}_\odot]`,
    :math:`\mathbf{W}[\dots] = (\mathbf{W}_e + \mathbf{W}_-)\mathbf{e}_j +
    (\mathbf{W}_v - \mathbf{W}_-)\mathbf{v} + \mathbf{W}_\odot(\mathbf{e}_j \odot \mathbf{v})`,
    exactly (the first two terms are computed once per behaviour and once per
    candidate).

    Args:
        channels (int): size :math:`d` of behaviours and candidates.
        hidden_channels (tuple of int): hidden layer sizes; the paper's Fig. 2
            has one of 36, the authors' code 80 and 40. (default: ``(36,)``)
        activation (str): ``"dice"``, ``"prelu"``, ``"sigmoid"`` (the code's)
            or ``"relu"``. (default: ``"dice"``)
        softmax (bool): normalise the weights over the behaviours. (default: ``False``)

    Shapes:
        - **input:** behaviours :math:`(T, d)`, candidates :math:`(B, C, d)`,
          index :math:`(T)` (the session of each behaviour, in ``0 .. B - 1``)
        - **output:** weights :math:`(T, C)`: of each behaviour for each
          candidate of its session
    """

    def __init__(
        self,
        channels: int,
        hidden_channels: tuple[int, ...] = (36,),
        activation: str = "dice",
        softmax: bool = False,
    ) -> None:
        super().__init__()
        if not hidden_channels:
            raise ValueError("the activation unit needs at least one hidden layer")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.channels = channels
        self.hidden_channels = tuple(hidden_channels)
        self.activation = activation
        self.softmax = softmax
        sizes = [4 * channels, *self.hidden_channels]
        self.lins = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.acts = nn.ModuleList(make_activation(activation, h) for h in self.hidden_channels)
        self.lin_out = nn.Linear(sizes[-1], 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in [*self.lins, *self.acts, self.lin_out]:
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, behaviours: Tensor, candidates: Tensor, index: Tensor) -> Tensor:
        d = self.channels
        w = self.lins[0].weight
        w_e, w_v, w_diff, w_prod = w[:, :d], w[:, d : 2 * d], w[:, 2 * d : 3 * d], w[:, 3 * d :]
        per_behaviour = behaviours @ (w_e + w_diff).t()  # [T, H]
        per_candidate = candidates @ (w_v - w_diff).t() + self.lins[0].bias  # [B, C, H]
        v = candidates[index]  # [T, C, d]: each behaviour meets its session's candidates
        h = (v * behaviours.unsqueeze(1)) @ w_prod.t()
        h = h + per_behaviour.unsqueeze(1) + per_candidate[index]
        for i, act in enumerate(self.acts):
            if i > 0:
                h = self.lins[i](h)
            h = act(h)
        logits = self.lin_out(h).squeeze(-1)  # [T, C]
        if self.softmax:
            return softmax(logits, index, num_nodes=candidates.size(0), dim=0)
        return logits

    def __repr__(self) -> str:
        hidden = "-".join(map(str, self.hidden_channels))
        return (
            f"{self.__class__.__name__}({self.channels}, hidden={hidden}, "
            f"{self.activation}, softmax={self.softmax})"
        )
