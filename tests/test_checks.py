"""Argument checks: wrong types and ranges fail at once, naming the argument."""

import warnings

import numpy as np
import pytest
import torch

from graphrec import SRGNN
from graphrec.checks import check_arguments, check_device, check_float, check_int, warn_caller
from graphrec.models import DIN, SDM, STAMP


def test_check_int_and_float():
    assert check_int("n", np.int64(3), minimum=1) == 3
    for bad in (2.5, "10", True, None):
        with pytest.raises(TypeError, match="n must be an integer"):
            check_int("n", bad)
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        check_int("n", 0, minimum=1)
    assert check_float("x", 3, minimum=0) == 3.0
    for bad, match in ((float("nan"), "finite"), (-1.0, "> 0"), (0, "> 0")):
        with pytest.raises(ValueError, match=match):
            check_float("x", bad, minimum=0, exclusive_minimum=True)
    with pytest.raises(TypeError, match="x must be a number"):
        check_float("x", "1e-3")


def test_model_constructors_check_their_annotations():
    with pytest.raises(TypeError, match=r"num_items must be an integer, got 2\.5"):
        SRGNN(2.5)
    with pytest.raises(TypeError, match="num_items must be an integer, got '10'"):
        SRGNN("10")
    with pytest.raises(TypeError, match="hidden_channels must be an integer, got 'abc'"):
        SRGNN(10, hidden_channels="abc")
    with pytest.raises(ValueError, match="hidden_channels must be >= 1"):
        SRGNN(10, hidden_channels=0)
    with pytest.raises(TypeError, match="hybrid must be True or False"):
        SRGNN(10, hybrid=1)
    with pytest.raises(TypeError, match="max_norm must be a number or None"):
        STAMP(10, max_norm="x")
    with pytest.raises(ValueError, match="every entry of mlp_hidden must be >= 1"):
        DIN(10, mlp_hidden=(0, 3))
    with pytest.raises(TypeError, match="SDM\\(\\): got an unexpected keyword"):
        SDM(10, hidden=3)
    # what the annotations allow still builds
    assert STAMP(10, max_norm=None).max_norm is None and DIN(10, mlp_hidden=[8, 4])
    assert SRGNN(np.int64(10)).num_items == 10


def test_check_arguments_passes_unchecked_annotations():
    def f(a: int, b: "torch.Tensor", c: tuple[int, ...] = ()):
        pass

    check_arguments(f, {"a": 1, "b": object(), "c": (1, 2)})  # b's hint does not evaluate


def test_check_device():
    assert check_device(None) is None and check_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="'bogus' is not a torch device"):
        check_device("bogus")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            check_device("cuda")
    else:
        with pytest.raises(ValueError, match="CUDA device"):
            check_device(f"cuda:{torch.cuda.device_count()}")


def test_warn_caller_names_the_callers_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_caller("look here")
    assert caught[0].filename == __file__ and str(caught[0].message) == "look here"
