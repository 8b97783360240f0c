"""What ``motif eval`` evaluates on and where its results go: :class:`EvalArgs`.

Below :mod:`motif.eval.runner` (which runs it) and :mod:`motif.eval.identity` (which names a
run by it), so that both can import it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from motif.carryover import CarryOver, stored_carry_over
from motif.data import Problem, load_problems, slug
from motif.errors import ConfigError


@dataclass
class EvalArgs:
    """What to evaluate on and where the results go."""

    benchmark: str | None = field(
        default=None,
        metadata={
            "help": "gsm8k, math500, aime24, amc23 (hub or --data-dir), a .jsonl/.json/.parquet "
            "path, or reasoning_gym:<task>."
        },
    )
    data_dir: str | None = field(
        default=None,
        metadata={
            "help": "Directory with <name>_<split>.jsonl copies (gsm8k_test.jsonl, "
            "math500_test.jsonl, ...). Default: $MOTIF_DATA_DIR when it holds the file, else the hub."
        },
    )
    split: str | None = field(default=None, metadata={"help": "Another split of a benchmark."})
    question_field: str | None = field(
        default=None, metadata={"help": "Question field of a data file (default question/problem)."}
    )
    answer_field: str | None = field(
        default=None, metadata={"help": "Gold answer field of a data file (default answer)."}
    )
    skip_bad_rows: bool = field(
        default=False, metadata={"help": "Skip rows without question or gold instead of failing."}
    )
    task_config: str | None = field(
        default=None,
        metadata={"help": "reasoning-gym task options as JSON, e.g. '{\"size\": 200}'."},
    )
    data_seed: int = field(default=0, metadata={"help": "reasoning-gym generation seed."})
    limit: int | None = field(
        default=None, metadata={"help": "Evaluate the first N problems (not part of the identity)."}
    )
    samples: int = field(
        default=1,
        metadata={"help": "Samples per problem (K > 1 needs --temperature > 0): avg@K, pass@k."},
    )
    batch_size: int = field(
        default=16, metadata={"help": "Problems per rollout batch (results saved per batch)."}
    )
    output_dir: str | None = field(
        default=None,
        metadata={
            "help": "Results directory. Default: outputs/eval/<benchmark>-r<rounds>, then "
            "-<carry-over> unless summary and -k<samples> when --samples > 1."
        },
    )
    json: bool = field(default=False, metadata={"help": "Print the summary as JSON."})

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ConfigError(f"--samples must be >= 1; got {self.samples}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1; got {self.batch_size}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be >= 1; got {self.limit}")
        self.task_options()

    def task_options(self) -> dict | None:
        """``--task-config`` as a dict (a YAML config may give a mapping directly)."""
        if self.task_config is None or isinstance(self.task_config, dict):
            return self.task_config
        try:
            value = json.loads(self.task_config)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--task-config is not valid JSON: {exc.msg}") from exc
        if not isinstance(value, dict):
            raise ConfigError("--task-config must be a JSON object")
        return value

    def load_problems(self) -> list[Problem]:
        """Every problem of ``--benchmark`` (``--limit`` not applied; see :func:`load_problems`)."""
        return load_problems(
            self.benchmark,
            split=self.split,
            data_dir=self.data_dir,
            question_field=self.question_field,
            answer_field=self.answer_field,
            skip_bad_rows=self.skip_bad_rows,
            task_config=self.task_options(),
            seed=self.data_seed,
        )

    def resolved_output_dir(self, rounds: int, carry: type[CarryOver] | None = None) -> Path:
        """``--output-dir``, or
        ``outputs/eval/<benchmark>-r<rounds>[-<carry-over>][-<round end>][-k<samples>]``.

        ``carry`` (default: ``summary``) adds no carry-over tag when it is the legacy one (the
        directories written before carry-overs existed), and its round end only when the model
        ends the rounds (``-model``).
        """
        if self.output_dir:
            return Path(self.output_dir)
        carry = carry or stored_carry_over(None)
        tag = "" if carry.legacy else f"-{carry.name}"
        tag += "" if carry.round_end == "budget" else f"-{carry.round_end}"
        suffix = f"-k{self.samples}" if self.samples > 1 else ""
        name = f"{slug(self.benchmark or 'data')}-r{rounds}{tag}{suffix}"
        return Path("outputs") / "eval" / name
