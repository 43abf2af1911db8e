import pytest
import torch

from graphrec.nn import LocalActivationUnit


def dense_weights(unit, behaviours, candidates, mask):
    """a(e_j, v) = MLP([e_j, v, e_j - v, e_j * v]), built one pair at a time."""
    out = torch.zeros(candidates.size(0), candidates.size(1), behaviours.size(1))
    for b in range(candidates.size(0)):
        for c in range(candidates.size(1)):
            for j in range(behaviours.size(1)):
                if not mask[b, j]:
                    continue
                e, v = behaviours[b, j], candidates[b, c]
                h = torch.cat([e, v, e - v, e * v])
                for lin, act in zip(unit.lins, unit.acts, strict=True):
                    h = act(lin(h).unsqueeze(0)).squeeze(0)
                out[b, c, j] = unit.lin_out(h).squeeze()
    return out


@pytest.fixture
def inputs():
    torch.manual_seed(0)
    behaviours = torch.randn(3, 4, 5)
    candidates = torch.randn(3, 2, 5)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    return behaviours, candidates, mask


def run(unit, behaviours, candidates, mask):
    """The unit on packed behaviours, unpacked to [B, C, L] with zeros on padding."""
    index = torch.arange(mask.size(0)).repeat_interleave(mask.sum(1))
    packed = unit(behaviours[mask], candidates, index)  # [T, C]
    out = torch.zeros(candidates.size(0), candidates.size(1), mask.size(1))
    out.permute(0, 2, 1)[mask] = packed
    return out


def test_matches_the_dense_concatenation(inputs):
    behaviours, candidates, mask = inputs
    unit = LocalActivationUnit(5, (6, 3), activation="prelu").eval()
    out = run(unit, behaviours, candidates, mask)
    assert out.shape == (3, 2, 4)
    assert torch.allclose(out, dense_weights(unit, behaviours, candidates, mask), atol=1e-5)


def test_dice_in_eval_matches_the_dense_concatenation(inputs):
    behaviours, candidates, mask = inputs
    unit = LocalActivationUnit(5)
    run(unit, behaviours, candidates, mask)  # move the running statistics
    unit.eval()
    dense = dense_weights(unit, behaviours, candidates, mask)
    assert torch.allclose(run(unit, behaviours, candidates, mask), dense, atol=1e-5)


def test_softmax_option_normalises_over_real_behaviours(inputs):
    behaviours, candidates, mask = inputs
    unit = LocalActivationUnit(5, (6,), activation="sigmoid", softmax=True).eval()
    out = run(unit, behaviours, candidates, mask)
    assert torch.allclose(out.sum(-1), torch.ones(3, 2))
    raw = LocalActivationUnit(5, (6,), activation="sigmoid").eval()
    raw.load_state_dict(unit.state_dict())
    logits = run(raw, behaviours, candidates, mask).masked_fill(~mask.unsqueeze(1), float("-inf"))
    assert torch.allclose(out, torch.softmax(logits, -1), atol=1e-6)


def test_each_behaviour_only_meets_its_own_sessions_candidates(inputs):
    behaviours, candidates, mask = inputs
    unit = LocalActivationUnit(5, (6,), activation="prelu").eval()
    out = run(unit, behaviours, candidates, mask)
    for b in range(3):
        alone = run(unit, behaviours[b : b + 1], candidates[b : b + 1], mask[b : b + 1])
        assert torch.allclose(out[b], alone[0], atol=1e-6)
    assert str(unit) == "LocalActivationUnit(5, hidden=6, prelu, softmax=False)"
