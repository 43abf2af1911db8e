"""The one evaluator: full ranking, faiss retrieval, candidates, multi-target, session-rec."""

from graphrec.evaluation.evaluate import (
    auc_groups,
    evaluate,
    evaluate_multi_target,
    evaluate_session_rec,
    rest_of_sessions,
    split_for_multi_target,
)
from graphrec.evaluation.metrics import (
    AUCEvaluator,
    Evaluator,
    MultiTargetEvaluator,
    SessionRecEvaluator,
    format_table,
    grouped_auc,
    rank_of_target,
    relevant_positions,
    top_k,
)
from graphrec.evaluation.negatives import interacted_items, sample_negatives
from graphrec.evaluation.retrieval import FaissRetriever

__all__ = [
    "AUCEvaluator",
    "Evaluator",
    "FaissRetriever",
    "MultiTargetEvaluator",
    "SessionRecEvaluator",
    "auc_groups",
    "evaluate",
    "evaluate_multi_target",
    "evaluate_session_rec",
    "format_table",
    "grouped_auc",
    "interacted_items",
    "rank_of_target",
    "relevant_positions",
    "rest_of_sessions",
    "sample_negatives",
    "split_for_multi_target",
    "top_k",
]
