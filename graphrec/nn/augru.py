"""AUGRU: the attention-gated GRU of DIEN's interest evolving layer."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class AUGRU(nn.Module):
    r"""The GRU with attentional update gate from `"Deep Interest Evolution
    Network for Click-Through Rate Prediction" <https://arxiv.org/abs/1809.03672>`_
    (Zhou et al., AAAI 2019), eq. (1)-(4) and (7)-(8).

    One sequence of inputs :math:`\mathbf{i}_t` per row, run once per
    candidate, whose attention score :math:`a_t` scales the update gate:

    .. math::
        \mathbf{u}_t &= \sigma(\mathbf{W}^u \mathbf{i}_t + \mathbf{U}^u
            \mathbf{h}'_{t-1} + \mathbf{b}^u), \qquad
        \mathbf{r}_t = \sigma(\mathbf{W}^r \mathbf{i}_t + \mathbf{U}^r
            \mathbf{h}'_{t-1} + \mathbf{b}^r)

        \tilde{\mathbf{h}}_t &= \tanh(\mathbf{W}^h \mathbf{i}_t + \mathbf{r}_t
            \odot (\mathbf{U}^h \mathbf{h}'_{t-1} + \mathbf{b}^h_U) + \mathbf{b}^h)

        \tilde{\mathbf{u}}'_t &= a_t \cdot \mathbf{u}_t, \qquad
        \mathbf{h}'_t = (1 - \tilde{\mathbf{u}}'_t) \odot \mathbf{h}'_{t-1}
            + \tilde{\mathbf{u}}'_t \odot \tilde{\mathbf{h}}_t

    starting from :math:`\mathbf{h}'_0 = \mathbf{0}`. Inputs are
    left-aligned with ``lengths`` real steps per row; the output is the state
    after each row's last real step, and padding is never computed (rows
    are run longest first and drop out when they end, as packed sequences
    do). The input projections :math:`\mathbf{W}\mathbf{i}_t` are computed
    once per row and shared by its candidates.

    Args:
        in_channels (int): input size.
        hidden_channels (int): state size.

    Shapes:
        - **input:** inputs :math:`(B, L, \text{in})`, attention :math:`(B, C, L)`,
          lengths :math:`(B)` (each in :math:`1 \dots L`)
        - **output:** final states :math:`(B, C, \text{hidden})`
    """

    def __init__(self, in_channels: int, hidden_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        # gate order: reset r, update u, candidate h~
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_channels, in_channels))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_channels, hidden_channels))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_channels))
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform :math:`\\pm 1/\\sqrt{\\text{hidden}}`, as :class:`torch.nn.GRU`."""
        bound = 1.0 / math.sqrt(self.hidden_channels)
        for p in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh):
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: Tensor, attention: Tensor, lengths: Tensor) -> Tensor:
        batch, num_candidates, length = attention.shape
        if x.shape[:2] != (batch, length) or lengths.shape != (batch,):
            raise ValueError(
                f"inputs {tuple(x.shape)}, attention {tuple(attention.shape)} and lengths "
                f"{tuple(lengths.shape)} disagree on batch size or length"
            )
        if torch.compiler.is_exporting():
            return self._forward_masked(x, attention, lengths)
        if batch and (int(lengths.min()) < 1 or int(lengths.max()) > length):
            raise ValueError(f"lengths must lie in 1..{length}")
        hid = self.hidden_channels
        # longest rows first: the rows still running at step t are a prefix
        lengths, order = lengths.sort(descending=True)
        x, attention = x[order], attention[order]
        gates_in = F.linear(x, self.weight_ih, self.bias_ih)  # [B, L, 3h], once per row
        # per-step views made once: slicing the whole tensor at every step
        # would cost a zero-filled [B, L, 3h] gradient per step in backward
        gates_in, attention = gates_in.unbind(1), attention.unbind(2)
        running = (lengths.unsqueeze(1) > torch.arange(length, device=x.device)).sum(0).tolist()
        h = x.new_zeros(batch, num_candidates, hid)
        finished = []
        for t in range(int(lengths[0]) if batch else 0):
            n = running[t]
            if n < h.size(0):  # rows whose sequence ended: their state is final
                finished.append(h[n:])
                h = h[:n]
            gi = gates_in[t][:n].unsqueeze(1)  # [n, 1, 3h], shared by the candidates
            gh = F.linear(h, self.weight_hh, self.bias_hh)  # [n, C, 3h]
            r = torch.sigmoid(gi[..., :hid] + gh[..., :hid])
            u = torch.sigmoid(gi[..., hid : 2 * hid] + gh[..., hid : 2 * hid])
            h_tilde = torch.tanh(gi[..., 2 * hid :] + r * gh[..., 2 * hid :])
            u = attention[t][:n].unsqueeze(-1) * u
            h = h + u * (h_tilde - h)
        out = torch.cat([h, *reversed(finished)], dim=0)
        return out[order.argsort()]

    def _forward_masked(self, x: Tensor, attention: Tensor, lengths: Tensor) -> Tensor:
        """The same states, every row stepped over the whole (static) length and
        held once its sequence ends: no sorting, no data-dependent loop (what an
        exported graph runs)."""
        batch, num_candidates, length = attention.shape
        hid = self.hidden_channels
        gates_in = F.linear(x, self.weight_ih, self.bias_ih)
        h = x.new_zeros(batch, num_candidates, hid)
        for t in range(length):
            gi = gates_in[:, t].unsqueeze(1)
            gh = F.linear(h, self.weight_hh, self.bias_hh)
            r = torch.sigmoid(gi[..., :hid] + gh[..., :hid])
            u = torch.sigmoid(gi[..., hid : 2 * hid] + gh[..., hid : 2 * hid])
            h_tilde = torch.tanh(gi[..., 2 * hid :] + r * gh[..., 2 * hid :])
            u = attention[:, :, t].unsqueeze(-1) * u
            step = h + u * (h_tilde - h)
            h = torch.where((lengths > t).view(-1, 1, 1), step, h)
        return h

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels})"
