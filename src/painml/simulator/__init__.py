"""Simulated cohorts whose figures come from the literature, and the realism check against those figures."""
