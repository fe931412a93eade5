"""Convergence studies: metrics of runs, the analytic view, parameter sweeps.

* :mod:`~tidesim.studies.metrics` -- what a run achieved (settle time, spread,
  energy, counts, stability, faults); ``run_metrics`` gives one table row.
* :mod:`~tidesim.studies.analysis` -- graph Laplacian, effective resistance,
  the energy a linear controller is predicted to spend.
* :mod:`~tidesim.studies.sweep` -- ``Sweep`` and ``run_sweep``: grids, seeded
  random samples and repetitions on any executor, one resumable results table.
* :mod:`~tidesim.studies.tables` -- ``aggregate`` (mean, spread and missing
  values per group of runs) and ``markdown_table``.
* :mod:`~tidesim.studies.plots` -- ``plot_run`` (frequencies, counts, stable
  periods of a run) and ``plot_sweep`` (a metric against a swept key);
  matplotlib is imported only when a figure is drawn or its path checked.
"""

from .analysis import (
    algebraic_connectivity,
    analysis_summary,
    effective_resistance,
    laplacian,
    laplacian_spectrum,
    offset_resistance,
    predicted_energy,
)
from .metrics import (
    energy,
    energy_spread,
    fault_counts,
    final_frequency_ppm,
    frequencies_at,
    link_stability,
    max_abs_count_per_link,
    run_metrics,
    settle_time_s,
    spread_over_time,
    stable_periods,
    summary,
)
from .plots import check_plot_path, plot_run, plot_sweep
from .sweep import RunSpec, Sweep, SweepResult, load_sweep, run_sweep, to_table, write_csv
from .tables import aggregate, markdown_table

__all__ = [
    "RunSpec",
    "Sweep",
    "SweepResult",
    "aggregate",
    "algebraic_connectivity",
    "analysis_summary",
    "check_plot_path",
    "effective_resistance",
    "energy",
    "energy_spread",
    "fault_counts",
    "final_frequency_ppm",
    "frequencies_at",
    "laplacian",
    "laplacian_spectrum",
    "link_stability",
    "load_sweep",
    "markdown_table",
    "max_abs_count_per_link",
    "offset_resistance",
    "plot_run",
    "plot_sweep",
    "predicted_energy",
    "run_metrics",
    "run_sweep",
    "settle_time_s",
    "spread_over_time",
    "stable_periods",
    "summary",
    "to_table",
    "write_csv",
]
