"""Model selection: many independent trainings of one config (a sweep of its values, K-fold
cross-validation) on Dask distributed, from a LocalCluster on this machine to a cluster.

    grid.py     the points: a grid file's product or `random: N` samples, `--set k=v1,v2`
    runner.py   the plan (trials, the sweep folder), executing it on a Dask client, the summary
    trials.py   one trial: its run folder, the `done` marker, the function a worker runs
    cluster.py  the LocalCluster sized to the machine, or a connection to a scheduler
    results.py  one row per config sorted by validation error, results.csv/.jsonl, --write-best
    files.py    whole-or-absent writes (temporary file + os.replace) for everything above

`distributed` is an optional dependency (`pip install convtrain[cluster]`): only cluster.py and
runner.execute import it, inside functions.
"""
