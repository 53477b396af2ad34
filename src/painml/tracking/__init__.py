"""MLflow: the tracking store, logging a run, and the model registry. The only library package that
imports MLflow (besides the pyfunc door in :mod:`painml.serving.pyfunc`), always inside functions so that
choosing a store costs nothing."""
