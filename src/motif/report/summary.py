"""The text view of one evaluation's ``summary.json`` (``motif eval`` prints it at the end)."""

from __future__ import annotations

from motif.display import num, pct
from motif.eval.metrics import work_lines
from motif.handover import FLAGS


def summary_text(summary: dict) -> str:
    """A human-readable view of one ``summary.json``: headline, outcomes (each trajectory in one
    of correct / wrong / no answer / ungraded, cut ones among the ungraded), per-round table
    (with the hand-over watch's rates, :mod:`motif.handover`, when the run hands states on),
    transitions, and the generation time measured over every run of the directory.

    Raises KeyError when ``summary`` lacks a block ``motif eval`` writes (``metrics``,
    ``config.sampling``, ...)."""
    m, cfg = summary["metrics"], summary["config"]
    sampling = cfg["sampling"]
    how = "greedy" if sampling["temperature"] == 0 else f"temperature {sampling['temperature']}"
    ks = ", ".join(f"pass@{k} {pct(v)}%" for k, v in m["pass@k"].items())
    lines = [
        f"{summary['benchmark']}: {summary['label']} ({how}, {m['problems']} problems)",
        f"  pass@1 {pct(m['pass@1'])}%" + (f" ({ks})" if sampling["samples"] > 1 else ""),
        f"  no answer {m['no_answer']}   ungraded {m['ungraded']}{_cut_note(m)}   "
        f"truncated (any round) {pct(m['tokens']['truncated_any_rate'])}%",
        "  round  accuracy%  answered%  tokens  truncated%" + _handover_head(m.get("handover")),
    ]
    r = m["rounds"]
    for i, acc in enumerate(r["accuracy"]):
        lines.append(
            f"  {i + 1:>5}  {pct(acc):>9}  {pct(r['answered'][i]):>9}  "
            f"{num(r['completion_tokens_mean'][i]):>6}  {pct(r['truncation_rate'][i]):>10}"
            + _handover_cells(m.get("handover"), i)
        )
    for t in r["transitions"]:
        lines.append(f"  round {t['from']}->{t['to']}: fixed {t['fixed']}, broken {t['broken']}")
    tok = m["tokens"]
    lines.append(
        f"  largest round context {tok['largest_round_context']} tokens; generated per answer "
        f"{num(tok['generated_mean'])} tokens (max {tok['generated_max']})"
    )
    lines.extend(work_lines(m))  # step and state checks of tasks with checkers (motif.tasks)
    lines.extend(_measured_lines(summary.get("measured"), m["problems"]))
    return "\n".join(lines)


def _handover_head(handover: dict | None) -> str:
    """The hand-over watch's columns of the per-round table (none for a strategy that hands no
    state: the run's summary has no ``handover`` block)."""
    if handover is None:
        return ""
    return "".join(f"  {flag}%" for flag in FLAGS)


def _handover_cells(handover: dict | None, index: int) -> str:
    """Round ``index + 1``'s hand-over rates (``-``: the round handed nothing over)."""
    if handover is None:
        return ""
    return "".join(
        f"  {pct(_at(handover[flag], index), missing='-'):>{len(flag) + 1}}" for flag in FLAGS
    )


def _at(values: list, index: int) -> float | None:
    return values[index] if index < len(values) else None


def _cut_note(metrics: dict) -> str:
    cut = (metrics.get("context_overflow") or {}).get("cut", 0)
    return f" (of them {cut} cut: context overflow)" if cut else ""


def _measured_lines(measured: dict | None, problems: int) -> list[str]:
    """The generation time summed over the directory's runs, and the finished problems it
    holds beyond those summarised (``--limit`` lower than before)."""
    if not measured:
        return []
    lines = []
    if measured["generated_problems"]:
        lines.append(
            f"  generation {measured['generation_seconds']:.1f} s for "
            f"{measured['generated_problems']} problems (summed over the runs of this directory)"
        )
    stored = measured.get("stored_problems", problems)
    if stored > problems:
        lines.append(
            f"  the directory holds {stored} finished problems; this summary covers the first "
            f"{problems} (--limit)"
        )
    return lines
