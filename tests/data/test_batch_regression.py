"""Batches are bit-identical to those of the format-3 datasets, which stored
every sample's graph: digests recorded with that code (graphrec at commit
bb67c86) by ``tests/data/batch_digests.py``, over every sample of real and
generated splits, in contiguous and shuffled batches and one by one, PyG's
bookkeeping included."""

from __future__ import annotations

import pytest

from .batch_digests import CASES, case_digest

RECORDED = {
    "diginetica-train": "e1f5f64e182d0153",
    "diginetica-valid": "75cff43345b8143c",
    "diginetica-test": "b0cbbce9b7ab2e97",
    "diginetica-train-w10-count-h5": "122f9523fb6478e3",
    "yoochoose-test": "51b88184f02af040",
    "yoochoose-train-w20": "0455a534d7488153",
    "amazon-train-h20": "c20c83aeb2e0d6a5",
    "amazon-valid": "f30071229d9e3385",
    "amazon-test-h50": "d1aced43a6927335",
    "clicklog-train-h5": "638cdfc575135a6c",
    "clicklog-valid": "af560c867e598c4c",
    "clicklog-test-w3": "40ae84734fee3c63",
    "synthetic-train-h5": "f0ec56edb7c44d71",
    "synthetic-test-w4": "860a30123e2a06aa",
}
GENERATED = ("clicklog", "synthetic")
#: the real-data cases that take more than a few seconds
SLOW = {"diginetica-train", "diginetica-train-w10-count-h5", "amazon-train-h20"}


PARAMS = [
    pytest.param(*case, id=case[0], marks=[pytest.mark.slow] if case[0] in SLOW else [])
    for case in CASES
]


@pytest.mark.parametrize("name,dataset,split,options", PARAMS)
def test_batches_equal_the_prebuilt_graphs(
    name, dataset, split, options, request, tmp_path_factory
):
    if dataset in GENERATED:
        root = tmp_path_factory.getbasetemp()
    else:
        root = request.getfixturevalue("shared_data")
    work = tmp_path_factory.getbasetemp() / "digests"
    work.mkdir(exist_ok=True)
    assert case_digest(name, dataset, split, options, root, work) == RECORDED[name]
