"""The one evaluator: full ranking, faiss retrieval, candidate ranking, multi-target."""

from graphrec.evaluation.evaluate import evaluate, evaluate_multi_target, split_for_multi_target
from graphrec.evaluation.metrics import (
    Evaluator,
    MultiTargetEvaluator,
    format_table,
    rank_of_target,
)
from graphrec.evaluation.negatives import interacted_items, sample_negatives
from graphrec.evaluation.retrieval import FaissRetriever

__all__ = [
    "Evaluator",
    "FaissRetriever",
    "MultiTargetEvaluator",
    "evaluate",
    "evaluate_multi_target",
    "format_table",
    "interacted_items",
    "rank_of_target",
    "sample_negatives",
    "split_for_multi_target",
]
