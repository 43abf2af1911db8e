"""The one evaluator: full ranking, faiss retrieval, candidate ranking, multi-target."""

from graphrec.evaluation.evaluate import (
    auc_groups,
    evaluate,
    evaluate_multi_target,
    split_for_multi_target,
)
from graphrec.evaluation.metrics import (
    AUCEvaluator,
    Evaluator,
    MultiTargetEvaluator,
    format_table,
    grouped_auc,
    rank_of_target,
)
from graphrec.evaluation.negatives import interacted_items, sample_negatives
from graphrec.evaluation.retrieval import FaissRetriever

__all__ = [
    "AUCEvaluator",
    "Evaluator",
    "FaissRetriever",
    "MultiTargetEvaluator",
    "auc_groups",
    "evaluate",
    "evaluate_multi_target",
    "format_table",
    "grouped_auc",
    "interacted_items",
    "rank_of_target",
    "sample_negatives",
    "split_for_multi_target",
]
