import pytest
import torch

from graphrec import STAMP


def dense_stamp(model, sessions):
    """STAMP eq. (6)-(9) (or the authors' code), one session at a time."""
    emb = model.item_embedding.weight
    rows = []
    for s in sessions:
        x = emb[torch.tensor(s)]
        if model.variant == "code":
            norms = x.norm(dim=1, keepdim=True)
            x = torch.where(norms > model.max_norm, x * model.max_norm / norms, x)
        x_t, m_s = x[-1], x.mean(0)
        w1, w2, w3 = model.lin_click.weight, model.lin_last.weight, model.lin_mean.weight
        b_a = model.lin_mean.bias if model.variant == "paper" else 0  # the code has none
        alpha = torch.stack(
            [
                model.lin_attention.weight[0] @ torch.sigmoid(w1 @ xi + w2 @ x_t + w3 @ m_s + b_a)
                for xi in x
            ]
        )
        m_a = (alpha.unsqueeze(1) * x).sum(0)
        if model.variant == "paper":
            h_s = torch.tanh(model.lin_session.weight @ m_a + model.lin_session.bias)
            h_t = torch.tanh(model.lin_target.weight @ x_t + model.lin_target.bias)
        else:
            h_s = torch.tanh(model.lin_session.weight @ (m_a + m_s))
            h_t = torch.tanh(model.lin_target.weight @ x_t)
        rows.append(emb[1:] @ (h_s * h_t))  # trilinear <h_s, h_t, x_i>
    return torch.stack(rows)


@pytest.mark.parametrize("variant", ["paper", "code"])
def test_scores_equal_dense_reference(variant, sessions, batch):
    torch.manual_seed(1)
    model = STAMP(30, hidden_channels=10, variant=variant, max_norm=0.02)
    with torch.no_grad():  # larger weights than the init, so that every term matters
        for p in model.parameters():
            p.normal_(std=0.5)
        model.item_embedding.weight[0].zero_()
    scores = model.score(batch)
    assert torch.isneginf(scores[:, 0]).all()
    assert (scores[:, 1:] - dense_stamp(model, sessions)).abs().max() <= 1e-5


def test_code_variant_has_no_tanh_biases():
    code = STAMP(5, variant="code")
    assert code.lin_session.bias is None and code.lin_target.bias is None
    assert code.lin_mean.bias is None  # no b_a in the authors' FwNnAttLayer
    assert STAMP(5).lin_mean.bias is not None
    assert STAMP(5).lin_session.bias is not None
    with pytest.raises(ValueError, match="variant must be one of"):
        STAMP(5, variant="tf")


def test_init_and_repr():
    model = STAMP(43097)
    assert str(model) == "STAMP(43097, hidden_channels=100, variant='paper')"
    assert model.item_embedding.weight[0].abs().sum() == 0
    assert 0.0015 < float(model.item_embedding.weight[1:].detach().std()) < 0.0025
    assert 0.04 < float(model.lin_click.weight.detach().std()) < 0.06


def test_gradients_and_padding_row(batch):
    model = STAMP(30, hidden_channels=8)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model.loss(batch).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    opt.step()
    assert model.item_embedding.weight[0].abs().sum() == 0
