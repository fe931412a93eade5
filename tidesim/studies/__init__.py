"""Convergence studies: metrics of runs (sweeps and plots build on these)."""

from .metrics import energy, settle_time_s, summary

__all__ = ["energy", "settle_time_s", "summary"]
