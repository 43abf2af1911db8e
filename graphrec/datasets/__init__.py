"""Benchmarks, raw-log preprocessing, legacy pickles and the synthetic default."""

from graphrec.datasets.benchmark import BENCHMARKS, load_benchmark, split_sessions
from graphrec.datasets.io import data_root, read_sessions, read_srgnn_pickle, write_sessions
from graphrec.datasets.preprocess import preprocess_diginetica, preprocess_yoochoose
from graphrec.datasets.registry import DATASETS, load_dataset
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
    "generate_sessions",
    "leave_one_out",
    "load_benchmark",
    "load_dataset",
    "load_sequential",
    "preprocess_diginetica",
    "preprocess_yoochoose",
    "read_interactions",
    "read_sessions",
    "read_srgnn_pickle",
    "split_sessions",
    "synthetic",
    "write_sessions",
]
