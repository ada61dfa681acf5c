"""A Hydra multirun as a whole: each job's status, the sweep's table, plots and check."""
