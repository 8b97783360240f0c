"""The equal-budget comparison: carry-over strategies side by side at one total token budget.

``motif eval --grid "192=summary:3x64,tail:5x64,none:1x192" --tail-head 0`` (tail: 64 + 4 x 32)
evaluates every *cell* of a grid on the same model, task and sampling. A *group* claims a total
new-token budget ``T`` and lists cells ``STRATEGY:NxB`` that must each total ``T`` (checked
before any model loads):

* ``summary:NxB``: N rounds of at most B new tokens each (MOTIF, arXiv 2507.02851; InftyThink,
  arXiv 2503.06692); total ``N * B``.
* ``tail:IxC``: one thought in at most I chunks of C tokens (Delethink, arXiv 2510.06557), each
  later chunk carrying ``--tail-head`` h and ``--tail-keep`` m tokens; total
  ``C + (I - 1)(C - h - m)`` (:class:`motif.carryover.TailWindow`).
* ``none:1xT``: one pass of T new tokens (the long chain-of-thought reference).

Each cell is an ordinary ``motif eval`` run into ``<output-dir>/cells/<label>/`` (so each
resumes on its own); the model is loaded once for all cells. The grid writes ``grid.json``
(one entry per cell: accuracy, tokens generated, largest context, wall-clock), ``grid.md``
and ``grid.png`` (accuracy against total budget, one line per strategy, the largest measured
context written next to each point; :mod:`motif.eval.grid_output` builds and draws them).
``motif report <output-dir>`` renders them too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from motif import models
from motif.backends.vllm_options import VllmArgs, plan_backend
from motif.carryover import CARRY_OVERS, GridCell, carry_over_class
from motif.config import TAIL_OPTIONS, GenerationArgs, ModelArgs, ProtocolArgs, unused_options
from motif.data import slug
from motif.errors import ConfigError
from motif.eval.args import EvalArgs
from motif.eval.grid_output import (
    cell_entry,
    cell_spec,
    grid_document,
    kept_entries,
    merge_cells,
    write_grid_outputs,
    write_json,
)
from motif.eval.identity import run_identity
from motif.eval.runner import check_eval_dir, check_sampling, run_eval
from motif.eval.store import check_identity
from motif.outdir import MARKER, OutputDir, check_output_dir
from motif.runs.eval import entry_dir, read_grid
from motif.runs.layout import (
    CELLS_DIR,
    GRID_FILE,
    GRID_PLOT,  # noqa: F401  (GRID_*: importable from here, as motif.cli.eval does)
    GRID_TABLE,  # noqa: F401
    SAMPLES_FILE,
)
from motif.runtime import check_protocol_fits, load_backend, protocol_generation

logger = logging.getLogger(__name__)

CELL_OPTIONS = (
    "rounds",
    "carry-over",
    "max-new-tokens",
    "later-max-new-tokens",
    "tail-chunk",
    "tail-chunks",
)
"""Options a grid cell sets itself: refused next to ``--grid`` (see :func:`check_cell_options`)."""
# Counts are ASCII digits: str.isdigit() and a Unicode \d also take "²" (int() then fails) and
# "٣" or "３" (read as 3, but echoed back in messages as the user did not write it).
_CELL = re.compile(
    r"^\s*(?P<strategy>[A-Za-z_]+)\s*:\s*(?P<n>[0-9]+)\s*[xX]\s*(?P<b>[0-9]+)\s*$", re.ASCII
)
_TOTAL = re.compile(r"\s*(?P<total>[0-9]+)\s*", re.ASCII)


@dataclass
class GridArgs:
    """The equal-budget grid of ``motif eval`` (docs/bounded-context.md)."""

    grid: list[str] | None = field(
        default=None,
        metadata={
            "help": "Evaluate a grid of carry-over cells at equal total new-token budgets: "
            "TOTAL=STRATEGY:NxB,... (summary:NxB = N rounds of B tokens; tail:IxC = I chunks "
            "of C with --tail-head/--tail-keep; none:1xT = one pass), e.g. "
            "'192=summary:3x64,tail:5x64,none:1x192' with --tail-head 0 (tail: 64 + 4 x 32). "
            "Repeat it or separate groups with ';'. "
            "Cells set --rounds, --carry-over and the budgets themselves.",
        },
    )

    def __post_init__(self) -> None:
        if isinstance(self.grid, str):  # a YAML config may give one string
            self.grid = [self.grid]
        if self.grid is not None:
            parse_grid(self.grid)


@dataclass(frozen=True)
class GridGroup:
    """One group of a grid: the total new-token budget it claims and its cells."""

    total: int
    cells: tuple[GridCell, ...]


def parse_cell(text: str) -> GridCell:
    """``STRATEGY:NxB`` as a :class:`GridCell`.

    Raises:
        ConfigError: malformed text, an unknown strategy, N or B below 1, ``none`` with N != 1.
    """
    match = _CELL.match(text)
    if not match:
        raise ConfigError(
            f"--grid cell {text.strip()!r} is not STRATEGY:NxB with N and B whole numbers in "
            "digits 0-9 (e.g. summary:3x64, tail:5x64, none:1x192)"
        )
    strategy, n, b = match["strategy"], int(match["n"]), int(match["b"])
    if strategy not in CARRY_OVERS:
        raise ConfigError(
            f"--grid cell {text.strip()!r}: strategy must be one of {', '.join(CARRY_OVERS)}"
        )
    if n < 1 or b < 1:
        raise ConfigError(f"--grid cell {text.strip()!r}: N and B must be >= 1")
    carry_over_class(strategy).check_cell(n, b, repr(text.strip()))
    return GridCell(strategy, n, b)  # type: ignore[arg-type]


def parse_grid(specs: Sequence[str]) -> list[GridGroup]:
    """``--grid`` values (each one or more ``;``-separated groups ``TOTAL=CELL,CELL``) as groups.

    Raises:
        ConfigError: a malformed group or cell, or a cell listed twice (syntax only; the totals
            are checked by :func:`check_grid`, which needs the tail window).
    """
    groups, seen = [], set()
    for part in (p for spec in specs for p in str(spec).split(";")):
        if not part.strip():
            continue
        total_text, sep, cells_text = part.partition("=")
        total = _TOTAL.fullmatch(total_text)
        if not sep or total is None or int(total["total"]) < 1:
            got = (
                f": TOTAL {total_text.strip()!r} is not" if sep else " is not TOTAL=CELL with TOTAL"
            )
            raise ConfigError(
                f"--grid group {part.strip()!r}{got} a token count >= 1 in digits 0-9 "
                "(e.g. 192=summary:3x64,none:1x192)"
            )
        cells = tuple(parse_cell(c) for c in cells_text.split(",") if c.strip())
        if not cells:
            raise ConfigError(f"--grid group {part.strip()!r} lists no cells")
        for cell in cells:
            if cell.label in seen:
                raise ConfigError(f"--grid lists {cell_spec(cell)} twice; keep one")
            seen.add(cell.label)
        groups.append(GridGroup(int(total["total"]), cells))
    if not groups:
        raise ConfigError("--grid is empty; e.g. --grid '192=summary:3x64,none:1x192'")
    return groups


def unused_tail(grid: GridArgs, proto: ProtocolArgs) -> str | None:
    """A note for ``--tail-*`` options set although no cell of the grid is a tail cell."""
    cells = (c for g in parse_grid(grid.grid) for c in g.cells)
    if any(set(TAIL_OPTIONS) <= set(carry_over_class(c.carry_over).own_options) for c in cells):
        return None
    return unused_options(proto, TAIL_OPTIONS, "they apply to tail cells; this grid has none")


def check_grid(groups: Sequence[GridGroup], head: int, keep: int | None) -> None:
    """Every cell totals its group's claim, and every tail cell's window is valid.

    Raises:
        ConfigError: naming the cell, what it totals and a cell of the same shape that would
            match (when one exists).
    """
    for group in groups:
        for cell in group.cells:
            actual = _cell_total(cell, head, keep)
            if actual != group.total:
                raise ConfigError(
                    f"--grid cell {cell_spec(cell)} totals {actual} new tokens"
                    f"{_tail_note(cell, head, keep)}, not its group's {group.total}: "
                    f"{_suggest(cell, group.total, head, keep)}"
                )


def _cell_total(cell: GridCell, head: int, keep: int | None) -> int:
    try:
        return cell.total_budget(head, keep)
    except ConfigError as exc:
        keeps = "C/2" if keep is None else keep
        raise ConfigError(
            f"{_cell_error(cell, exc)} (C = {cell.budget}, --tail-head {head}, --tail-keep {keeps})"
        ) from None


def _tail_note(cell: GridCell, head: int, keep: int | None) -> str:
    return carry_over_class(cell.carry_over).cell_note(cell.rounds, cell.budget, head, keep)


def _suggest(cell: GridCell, total: int, head: int, keep: int | None) -> str:
    """A cell of the same strategy and per-round budget that totals ``total``, if one exists."""
    return carry_over_class(cell.carry_over).suggest_cell(cell.budget, total, head, keep)


def check_cell_options(given: set[str]) -> None:
    """Refuse options a grid cell sets itself (``given``: option names, dashed, no ``--``).

    Raises:
        ConfigError: naming the first such option.
    """
    for name in CELL_OPTIONS:
        if name in given:
            raise ConfigError(
                f"--{name} is set by every --grid cell (STRATEGY:NxB: N rounds or chunks of B "
                f"tokens); drop --{name} or drop --grid"
            )


# --------------------------------------------------------------------------- cells


@dataclass(frozen=True)
class CellPlan:
    """One cell's run: its claimed total and the configs of its ``motif eval`` run."""

    cell: GridCell
    total: int
    gen: GenerationArgs
    proto: ProtocolArgs

    @property
    def label(self) -> str:
        """The cell's directory name under ``cells/``."""
        return self.cell.label


def plan_cells(
    groups: Sequence[GridGroup], gen: GenerationArgs, proto: ProtocolArgs
) -> list[CellPlan]:
    """The eval configs of every cell: the cell sets rounds/chunks, carry-over and the budgets;
    sampling, the summary rule, early stop and the tail's h and m come from ``gen``/``proto``.

    Raises:
        ConfigError: as :func:`check_grid`, or a cell the protocol options refuse (named).
    """
    check_grid(groups, proto.tail_head, proto.tail_keep)
    return [plan_cell(cell, group.total, gen, proto) for group in groups for cell in group.cells]


def plan_cell(cell: GridCell, total: int, gen: GenerationArgs, proto: ProtocolArgs) -> CellPlan:
    """One cell's eval configs (see :func:`plan_cells`; ``total`` is not checked here).

    Raises:
        ConfigError: a cell the protocol options refuse (named).
    """
    options = {
        "summary_rule": proto.summary_rule,
        "early_stop": proto.early_stop,
        "tail_chunk": proto.tail_chunk,
        "tail_head": proto.tail_head,
        "tail_keep": proto.tail_keep,
        "tail_chunks": proto.tail_chunks,
        **carry_over_class(cell.carry_over).cell_options(cell.rounds, cell.budget),
    }
    try:
        cell_proto = ProtocolArgs(carry_over=cell.carry_over, **options)
    except ConfigError as exc:
        raise _cell_error(cell, exc) from None
    cell_gen = replace(gen, max_new_tokens=cell.budget, later_max_new_tokens=cell.budget)
    return CellPlan(cell, total, cell_gen, cell_proto)


def memoized(loader: Callable[[ModelArgs], Any]) -> Callable[[ModelArgs], Any]:
    """A backend loader that loads once and hands the same backend to every later call."""
    cache: list[Any] = []

    def load(model: ModelArgs) -> Any:
        if not cache:
            cache.append(loader(model))
        return cache[0]

    return load


def default_output_dir(benchmark: str, samples: int = 1) -> Path:
    """``outputs/eval/<benchmark>-grid[-k<samples>]``."""
    suffix = f"-k{samples}" if samples > 1 else ""
    return Path("outputs") / "eval" / f"{slug(benchmark)}-grid{suffix}"


# --------------------------------------------------------------------------- running


def run_grid(
    args: EvalArgs,
    grid: GridArgs,
    model: ModelArgs,
    gen: GenerationArgs,
    proto: ProtocolArgs,
    *,
    backend_loader: Callable[[ModelArgs], Any] | None = None,
    grader: Any = None,
    vllm: Any = None,
) -> dict:
    """Evaluate every cell (resuming each), write and return the ``grid.json`` content.

    ``args`` is the :class:`motif.eval.runner.EvalArgs` shared by every cell (``output_dir``:
    the grid's directory, default :func:`default_output_dir`). The cells set ``--rounds``,
    ``--carry-over``, ``--tail-chunk``, ``--tail-chunks`` and both per-round budgets; the
    other options of ``gen``/``proto`` apply to all. Everything is checked before any model
    loads or anything is written; ``backend_loader`` (default
    :func:`motif.runtime.load_backend`) is called at most once, when some cell has work left.
    """
    plans, out_dir = prepare_grid(args, grid, model, gen, proto, vllm, backend_loader is None)
    loader = memoized(backend_loader or _default_loader(vllm, gen, plans))
    earlier = read_grid(out_dir).get("cells", [])
    kept = kept_entries(out_dir, [p.label for p in plans])
    entries = {e["label"]: e for e in earlier}
    _claim(out_dir)
    doc: dict = {}
    for i, plan in enumerate(plans, start=1):
        logger.info("cell %d/%d: %s (total %d new tokens)", i, len(plans), plan.label, plan.total)
        cell_args = replace(args, output_dir=str(out_dir / CELLS_DIR / plan.label))
        summary = run_eval(
            cell_args, model, plan.gen, plan.proto, backend_loader=loader, grader=grader, vllm=vllm
        )
        previous = entries.get(plan.label)
        entries[plan.label] = cell_entry(plan.cell, plan.total, plan.proto, summary, previous)
        ran = [entries[p.label] for p in plans if p.label in entries]
        doc = grid_document(args, proto, out_dir, summary, merge_cells(ran, kept))
        write_json(out_dir / GRID_FILE, doc)
    write_grid_outputs(out_dir, doc)
    return doc


def prepare_grid(
    args: EvalArgs,
    grid: GridArgs,
    model: ModelArgs,
    gen: GenerationArgs,
    proto: ProtocolArgs,
    vllm: Any = None,
    check_model: bool = True,
) -> tuple[list[CellPlan], Path]:
    """Every check of :func:`run_grid`, nothing loaded or written: (cell plans, grid dir).

    ``check_model``: also the model paths and, per cell, the per-round budget against the
    model's context and the tail's chat template (:func:`motif.runtime.check_protocol_fits`).
    """
    if not args.benchmark:
        raise ConfigError("pass --benchmark NAME|PATH (e.g. math500, or a .jsonl file)")
    if not grid.grid:
        raise ConfigError("pass --grid TOTAL=STRATEGY:NxB,... (e.g. 192=summary:3x64,none:1x192)")
    plans = plan_cells(parse_grid(grid.grid), gen, proto)
    out_dir = (
        Path(args.output_dir)
        if args.output_dir
        else default_output_dir(args.benchmark, args.samples)
    )
    _check_grid_dir(out_dir)
    if check_model:
        models.check_model(model.model)
        if model.adapter:
            models.check_adapter_dir(model.adapter)
    for plan in plans:
        _check_cell(args, model, plan, vllm, out_dir, check_model)
    _check_cell_identities(args, model, plans, out_dir)
    _check_kept_identities(args, model, gen, proto, plans, out_dir)
    return plans, out_dir


def _check_cell(
    args: EvalArgs, model: ModelArgs, plan: CellPlan, vllm: Any, out_dir: Path, fits: bool
) -> None:
    check_sampling(args, plan.gen)
    vllm = vllm if vllm is not None else VllmArgs()
    plan_backend(
        model, vllm, protocol_generation(plan.gen, plan.proto), engine=False, protocol=plan.proto
    )
    check_eval_dir(out_dir / CELLS_DIR / plan.label)
    if fits:
        try:
            check_protocol_fits(model, plan.gen, plan.proto)
        except ConfigError as exc:
            raise _cell_error(plan.cell, exc) from None


_CELL_TERMS = (
    ("--later-max-new-tokens", "the cell's per-round budget B"),
    ("--max-new-tokens", "the cell's per-round budget B"),
    ("--tail-chunks", "the cell's chunk count I"),
    ("--tail-chunk", "the cell's chunk size C"),
)


def _cell_error(cell: Any, exc: ConfigError) -> ConfigError:
    """A single-run message about a grid cell, with the options a cell sets named as the cell's
    own numbers (those options are refused next to ``--grid``, so the fix is in the cell)."""
    message = str(exc)
    for option, term in _CELL_TERMS:
        message = message.replace(option, term)
    return ConfigError(f"--grid cell {cell_spec(cell)}: {message}")


def _check_cell_identities(args: EvalArgs, model: ModelArgs, plans: list[CellPlan], out_dir: Path):
    """A cell directory written under another configuration is refused before any cell runs."""
    full = args.load_problems()
    for plan in plans:
        check_identity(
            out_dir / CELLS_DIR / plan.label, run_identity(args, model, plan.gen, plan.proto, full)
        )


def _check_kept_identities(
    args: EvalArgs,
    model: ModelArgs,
    gen: GenerationArgs,
    proto: ProtocolArgs,
    plans: list[CellPlan],
    out_dir: Path,
) -> None:
    """An earlier run's cell this run keeps (:func:`motif.eval.grid_output.kept_entries`) must
    have been run under this run's shared options (model, data, sampling, summary rule, tail
    window): one grid never mixes configurations. Raises ConfigError naming the cell."""
    kept = kept_entries(out_dir, [p.label for p in plans])
    full = args.load_problems() if kept else []
    for entry in kept:
        try:
            plan = plan_cell(parse_cell(entry["cell"]), entry.get("total", 0), gen, proto)
            identity = run_identity(args, model, plan.gen, plan.proto, full)
            check_identity(out_dir / entry_dir(entry), identity)
        except ConfigError as exc:
            raise ConfigError(
                f"{out_dir / GRID_FILE} keeps cell {entry['cell']} of an earlier run: {exc} "
                "(a grid keeps every cell it has run: pass another --output-dir)"
            ) from None


def _check_grid_dir(out_dir: Path) -> None:
    check_output_dir(out_dir, kind="eval", resume=True, legacy_files=(GRID_FILE,))
    if (out_dir / SAMPLES_FILE).exists():
        raise ConfigError(
            f"--output-dir {out_dir} holds a single eval run, not a grid; pass another --output-dir"
        )


def _claim(out_dir: Path) -> None:
    if not (out_dir / MARKER).exists():
        OutputDir(out_dir, "new", "eval").claim()


def _default_loader(vllm: Any, gen: GenerationArgs, plans: list[CellPlan]):
    """:func:`motif.runtime.load_backend` sized for the grid's largest per-round budget."""
    largest = max(p.cell.budget for p in plans)
    widest = replace(gen, max_new_tokens=largest, later_max_new_tokens=largest)
    return lambda model: load_backend(model, vllm, widest)
