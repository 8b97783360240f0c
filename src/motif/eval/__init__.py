"""Evaluation: batched, resumable multi-round (or single-round) runs over a problem set.

* :mod:`motif.eval.runner`: :class:`EvalArgs`, :func:`run_eval` (what ``motif eval`` does),
  :func:`evaluate` (the batch loop) and :func:`sample_record` (one ``samples.jsonl`` row).
* :mod:`motif.eval.store`: :class:`ResultStore`, the resumable output directory.
* :mod:`motif.eval.metrics`: :func:`pass_at_k`, :func:`compute_metrics` and the per-round
  analysis.

See ``docs/evaluation.md``.
"""

from __future__ import annotations

from motif.eval.metrics import compute_metrics, pass_at_k, report_ks
from motif.eval.runner import EvalArgs, evaluate, run_eval, sample_record
from motif.eval.store import ResultStore

__all__ = [
    "EvalArgs",
    "ResultStore",
    "compute_metrics",
    "evaluate",
    "pass_at_k",
    "report_ks",
    "run_eval",
    "sample_record",
]
