import pytest
import torch

from graphrec.nn import AUGRU


def dense_augru(cell, x, attention, length):
    """DIEN eq. (1)-(4), (7)-(8), one step at a time over the real inputs only."""
    hid = cell.hidden_channels
    w_ir, w_iu, w_ih = cell.weight_ih.split(hid)
    w_hr, w_hu, w_hh = cell.weight_hh.split(hid)
    b_ir, b_iu, b_ih = cell.bias_ih.split(hid)
    b_hr, b_hu, b_hh = cell.bias_hh.split(hid)
    h = torch.zeros(hid)
    for t in range(length):
        i = x[t]
        u = torch.sigmoid(w_iu @ i + b_iu + w_hu @ h + b_hu)
        r = torch.sigmoid(w_ir @ i + b_ir + w_hr @ h + b_hr)
        h_tilde = torch.tanh(w_ih @ i + b_ih + r * (w_hh @ h + b_hh))
        u = attention[t] * u
        h = (1 - u) * h + u * h_tilde
    return h


def test_augru_matches_the_equations():
    torch.manual_seed(0)
    cell = AUGRU(3, 4)
    x = torch.randn(2, 5, 3)
    attention = torch.rand(2, 3, 5)
    out = cell(x, attention, torch.tensor([5, 2]))
    assert out.shape == (2, 3, 4)
    for b, length in enumerate((5, 2)):
        for c in range(3):
            ref = dense_augru(cell, x[b], attention[b, c], length)
            assert torch.allclose(out[b, c], ref, atol=1e-6)
    assert str(cell) == "AUGRU(3, 4)"


def test_attention_one_is_a_gru_and_zero_keeps_the_state():
    torch.manual_seed(0)
    cell = AUGRU(3, 4)
    x = torch.randn(1, 4, 3)
    lengths = torch.tensor([4])
    assert torch.allclose(cell(x, torch.zeros(1, 1, 4), lengths), torch.zeros(1, 1, 4))
    # a = 1: the paper's GRU; torch's GRU names the gates the other way round
    gru = torch.nn.GRU(3, 4, batch_first=True)
    hid = 4
    with torch.no_grad():
        for name, ours in (("weight_ih_l0", cell.weight_ih), ("weight_hh_l0", cell.weight_hh),
                           ("bias_ih_l0", cell.bias_ih), ("bias_hh_l0", cell.bias_hh)):  # fmt: skip
            r, u, n = ours.split(hid)
            getattr(gru, name).copy_(torch.cat([r, -u, n]))
    # torch: h' = (1 - z) n + z h with z = sigma(.); ours: u = 1 - z = sigma(-.)
    _, h = gru(x)
    assert torch.allclose(cell(x, torch.ones(1, 1, 4), lengths)[0, 0], h[0, 0], atol=1e-6)


def test_padding_changes_nothing_in_any_row_order():
    torch.manual_seed(0)
    cell = AUGRU(3, 4)
    x = torch.randn(4, 3, 3)
    attention = torch.rand(4, 2, 3)
    lengths = torch.tensor([1, 3, 2, 3])  # unsorted, ties
    out = cell(x, attention, lengths)
    for b in range(4):
        alone = cell(
            x[b : b + 1, : lengths[b]], attention[b : b + 1, :, : lengths[b]], lengths[b : b + 1]
        )
        assert torch.allclose(out[b], alone[0], atol=1e-6)
    # more padding, with arbitrary values and attention
    x2 = torch.cat([x, torch.randn(4, 4, 3)], dim=1)
    x2[0, 1:] = 9.0
    a2 = torch.cat([attention, torch.rand(4, 2, 4)], dim=2)
    assert torch.allclose(out, cell(x2, a2, lengths), atol=1e-6)
    out.sum().backward()
    assert cell.weight_hh.grad is not None


def test_bad_lengths():
    cell = AUGRU(3, 4)
    with pytest.raises(ValueError, match="lengths must"):
        cell(torch.randn(2, 3, 3), torch.rand(2, 1, 3), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="disagree"):
        cell(torch.randn(2, 3, 3), torch.rand(2, 1, 3), torch.tensor([1, 2, 3]))


def test_the_masked_form_an_export_runs_equals_the_sorted_one():
    """What an exported graph runs (every row stepped over the whole width, held
    after its end; no sort, no data-dependent loop) gives the same final states."""
    torch.manual_seed(3)
    cell = AUGRU(3, 4)
    x, attention = torch.randn(5, 7, 3), torch.rand(5, 2, 7)
    lengths = torch.tensor([7, 1, 4, 2, 7])
    with torch.no_grad():
        assert torch.allclose(
            cell._forward_masked(x, attention, lengths), cell(x, attention, lengths), atol=1e-6
        )
