"""One predictor behind every way of asking: one patient, batch files, HTTP and MLflow's pyfunc."""
