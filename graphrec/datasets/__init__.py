"""Benchmarks, raw-log preprocessing, legacy pickles and the synthetic default."""

from graphrec.datasets.benchmark import (
    BENCHMARKS,
    load_benchmark,
    load_session_folder,
    split_sessions,
)
from graphrec.datasets.clicklog import from_click_log, load_click_log
from graphrec.datasets.io import data_root, read_sessions, read_srgnn_pickle, write_sessions
from graphrec.datasets.movielens import load_movielens
from graphrec.datasets.preprocess import preprocess_diginetica, preprocess_yoochoose
from graphrec.datasets.registry import DATASETS, dataset_label, is_sequential, load_dataset
from graphrec.datasets.sequential import (
    SEQUENTIAL,
    leave_one_out,
    load_sequential,
    read_interactions,
)
from graphrec.datasets.synthetic import generate_sessions, synthetic

__all__ = [
    "BENCHMARKS",
    "DATASETS",
    "SEQUENTIAL",
    "data_root",
    "dataset_label",
    "from_click_log",
    "generate_sessions",
    "is_sequential",
    "leave_one_out",
    "load_benchmark",
    "load_click_log",
    "load_dataset",
    "load_movielens",
    "load_sequential",
    "load_session_folder",
    "preprocess_diginetica",
    "preprocess_yoochoose",
    "read_interactions",
    "read_sessions",
    "read_srgnn_pickle",
    "split_sessions",
    "synthetic",
    "write_sessions",
]
