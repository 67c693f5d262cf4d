"""Ensemble statistics shared by the run file (stored means and errors) and the
analyses: the one standard error of the mean."""
import numpy as np


def sem(x, axis=0):
    """Standard error of the mean of ``x`` along ``axis``: the sample standard deviation
    (ddof = 1) over sqrt(n); NaN (with numpy's warning) for fewer than two values."""
    x = np.asarray(x, dtype=float)
    return x.std(axis, ddof=1) / np.sqrt(x.shape[axis])
