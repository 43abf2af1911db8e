"""The fully connected prediction head of DIN and DIEN."""

from __future__ import annotations

import itertools

from torch import Tensor, nn

from graphrec.nn.dice import ACTIVATIONS, Dice, make_activation


class MLP(nn.Module):
    r"""Fully connected layers with an activation after each hidden layer:
    the prediction head of DIN and DIEN.

    .. math::
        \mathbf{h}_{l+1} = f(\mathbf{W}_l \mathbf{h}_l + \mathbf{b}_l), \qquad
        \text{output} = \mathbf{w}^\top \mathbf{h}_L + b

    A :class:`Dice` activation takes the mask of real rows, so padded rows
    never enter its statistics.

    Args:
        in_channels (int): input size.
        hidden_channels (tuple of int): hidden layer sizes (may be empty).
        out_channels (int): output size. (default: ``1``)
        activation (str): ``"dice"``, ``"prelu"``, ``"sigmoid"`` or ``"relu"``.
            (default: ``"dice"``)

    Shapes:
        - **input:** :math:`(*, \text{in})`, optional mask :math:`(*)`
        - **output:** :math:`(*, \text{out})`
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: tuple[int, ...] = (200, 80),
        out_channels: int = 1,
        activation: str = "dice",
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.in_channels = in_channels
        self.hidden_channels = tuple(hidden_channels)
        self.out_channels = out_channels
        self.activation = activation
        sizes = [in_channels, *self.hidden_channels]
        self.lins = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.acts = nn.ModuleList(make_activation(activation, b) for b in self.hidden_channels)
        self.lin_out = nn.Linear(sizes[-1], out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in [*self.lins, *self.acts, self.lin_out]:
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        for lin, act in zip(self.lins, self.acts, strict=True):
            x = lin(x)
            x = act(x, mask) if isinstance(act, Dice) else act(x)
        return self.lin_out(x)

    def __repr__(self) -> str:
        sizes = "-".join(str(h) for h in (self.in_channels, *self.hidden_channels))
        return f"{self.__class__.__name__}({sizes}-{self.out_channels}, {self.activation})"
