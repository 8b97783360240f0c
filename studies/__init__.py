"""The project's studies: each runs the ``motif`` CLI end to end and writes the tables of
docs/results.md. Run them from the repository's root (they read ``recipes/`` from there):

    python -m studies.demo        # `make demo`: a cold start, MOTIF, the bounded-context grid
    python -m studies.replicate   # `make replicate`: base vs cold start vs GRPO vs MOTIF
    python -m studies.study2      # `make study2`: the second study (issue 18)
    python -m studies.study3      # `make study3`: the third study (issue 35)

Modules: :mod:`studies.jobs` (the resumable job runner both studies use),
:mod:`studies.wallclock` (the wall-clock match both make), :mod:`studies.tables` (how their
tables write a number), :mod:`studies.keeping` (what a study keeps between sittings) and
:mod:`studies.publishing` (what every publish stage does alike); per study its stages
(``replicate``, ``study2``, ``study3``), layout (``*_layout``) and tables (``*_summary``), and
the later studies' resume state (``*_state``) and publishing (``*_publish``). Run folders are
read with the package's readers (motif.runs). Dependencies go one way: a study's stages -> its tables,
state and publishing -> its layout -> the shared modules -> ``motif``; nothing in ``motif``
imports a study.

What a study publishes (docs/results.md, docs/results/): the tables and the raw outputs behind
them (summaries, per-step metrics), the adapters behind its headline numbers once each in
docs/results/adapters/ with the commands that re-score them, and the commands that rebuild
the rest. A study's resume state between sittings (studies/state/<study>/) is committed while
the study runs and removed once it is published.
"""
