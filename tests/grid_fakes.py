"""Equal-budget grids on the scripted fake: a thinker whose odd sums need 31 tokens, and a
small grid run on the arithmetic fixture.

Grid windows keep ``HEAD`` = 2 and ``KEEP`` = 6 tokens: a tail chunk of 16 writes 16 tokens,
later chunks 16 - 2 - 6 = 8 new ones.
"""

from __future__ import annotations

from pathlib import Path

from eval_fakes import ARITH, sum_of
from fakes import ScriptedBackend
from motif.config import GenerationArgs, ModelArgs, ProtocolArgs
from motif.eval.grid import GridArgs, run_grid
from motif.eval.runner import EvalArgs

# h = 2, m = 6: a tail chunk of 16 writes 16, later chunks 16 - 2 - 6 = 8 new tokens
SPEC = ["48=summary:3x16,tail:5x16,none:1x48", "96=summary:6x16;96=tail:11x16,none:1x96"]
HEAD, KEEP = 2, 6
THINK = [f"t{i}" for i in range(1, 31)]  # 30 one-token words before the box


def thinker(chat, sample):
    """Even sums: the boxed answer at once. Odd sums: 30 words of thought, then the box (31
    tokens), written from wherever a continued tail turn left off."""
    total = sum_of(chat[:2])  # the question (a continued tail turn adds a third message)
    answer = f"\\boxed{{{total}}}"
    if total % 2 == 0:
        return answer
    words = [*THINK, answer]
    if len(chat) > 2:  # a continued assistant turn: go on after the last carried word
        words = words[words.index(chat[2]["content"].split()[-1]) + 1 :]
    return " ".join(words)


def thinker_loader(calls: list):
    """A backend loader answering with :func:`thinker`; each call's model args go to ``calls``."""

    def load(model_args):
        calls.append(model_args)
        return ScriptedBackend(thinker)

    return load


def grid_run(out: Path, calls: list, spec=SPEC, **proto):
    """``run_grid`` of ``spec`` on :data:`ARITH` into ``out`` (batches of 4, window ``HEAD`` /
    ``KEEP`` unless ``proto`` overrides); its grid document."""
    args = EvalArgs(benchmark=ARITH, output_dir=str(out), batch_size=4)
    protocol = ProtocolArgs(**{"tail_head": HEAD, "tail_keep": KEEP, **proto})
    return run_grid(
        args, GridArgs(grid=list(spec)), ModelArgs(), GenerationArgs(), protocol,
        backend_loader=thinker_loader(calls),
    )  # fmt: skip
