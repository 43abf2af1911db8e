import pytest
import torch

from graphrec.nn import Dice
from graphrec.nn.dice import PReLU, make_activation


def test_dice_by_hand():
    dice = Dice(1, eps=0.0)
    with torch.no_grad():
        dice.alpha.fill_(0.5)
    x = torch.tensor([[-1.0], [1.0]])  # mean 0, biased var 1
    p = torch.sigmoid(x)
    expected = x * (p + (1 - p) * 0.5)
    assert torch.allclose(dice(x), expected)
    # running averages moved by momentum 0.1 towards mean 0, unbiased var 2
    assert torch.allclose(dice.running_mean, torch.zeros(1))
    assert torch.allclose(dice.running_var, torch.tensor([0.9 * 1 + 0.1 * 2]))
    assert str(dice) == "Dice(1)"


def test_dice_eval_does_not_depend_on_the_rest_of_the_batch():
    torch.manual_seed(0)
    dice = Dice(4)
    for _ in range(5):
        dice(torch.randn(32, 4) * 3 + 1)
    dice.eval()
    x = torch.randn(6, 4)
    alone = torch.cat([dice(x[i : i + 1]) for i in range(6)])
    assert torch.allclose(dice(x), alone)
    assert torch.allclose(dice(torch.cat([x, 100 * torch.randn(10, 4)]))[:6], alone)


def test_dice_statistics_ignore_padding():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    a, b = Dice(4), Dice(4)
    out = a(x, mask)
    garbage = x.clone()
    garbage[~mask] = 1e3
    out2 = b(garbage, mask)
    assert torch.allclose(out[mask], out2[mask])
    assert torch.allclose(a.running_mean, b.running_mean)
    ref = Dice(4)(x[mask])  # the real rows alone
    assert torch.allclose(out[mask], ref, atol=1e-6)


def test_dice_needs_two_rows_in_training():
    with pytest.raises(ValueError, match="2 real rows"):
        Dice(3)(torch.randn(1, 3))


def test_make_activation():
    prelu = make_activation("prelu", 3)
    assert isinstance(prelu, PReLU)
    with torch.no_grad():
        prelu.weight.copy_(torch.tensor([0.1, 0.2, 0.3]))
    x = torch.tensor([[[-1.0, -2.0, 3.0]]])  # features on the last dimension
    assert torch.allclose(prelu(x), torch.tensor([[[-0.1, -0.4, 3.0]]]))
    with pytest.raises(ValueError, match="activation must be one of"):
        make_activation("tanhh", 3)
