"""Run folders: where each file of an eval or training folder is, and the one reader of each.

* :mod:`motif.runs.layout`: every file name of an eval folder, a grid and a training folder;
* :mod:`motif.runs.eval`: the reader of an eval folder (identity, summary, sample rows, grid
  cells);
* :mod:`motif.runs.training`: the reader of a training folder (logged steps, step times,
  configuration, identity, checkpoints, adapters).

Writers (``motif eval``, ``motif train``) take their file names from the layout; ``motif
report``, ``motif compare``, ``motif view`` and the studies read through the readers.
"""
