import pytest
import torch

from graphrec.nn import MLP, Dice


def test_mlp_matches_its_layers():
    torch.manual_seed(0)
    mlp = MLP(6, (5, 4), 2, "prelu")
    x = torch.randn(3, 7, 6)
    h = mlp.acts[0](mlp.lins[0](x))
    h = mlp.acts[1](mlp.lins[1](h))
    assert torch.allclose(mlp(x), mlp.lin_out(h))
    assert mlp(x).shape == (3, 7, 2)
    assert str(mlp) == "MLP(6-5-4-2, prelu)"


def test_mlp_passes_the_mask_to_dice():
    torch.manual_seed(0)
    mlp = MLP(3, (4,), 1, "dice")
    assert isinstance(mlp.acts[0], Dice)
    x = torch.randn(2, 5, 3)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 0, 0]], dtype=torch.bool)
    garbage = x.clone()
    garbage[~mask] = 50.0
    assert torch.allclose(mlp(x, mask)[mask], mlp(garbage, mask)[mask])


def test_mlp_without_hidden_layers_is_linear():
    mlp = MLP(3, (), 1)
    x = torch.randn(4, 3)
    assert torch.allclose(mlp(x), mlp.lin_out(x))
    with pytest.raises(ValueError, match="activation"):
        MLP(3, (2,), 1, "swish")
