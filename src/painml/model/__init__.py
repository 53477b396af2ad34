"""Fitting, calibrating and storing a classifier: families, data split, fit, calibration, conformal sets,
the bundle on disk and its compiled form."""
