"""Why the model decides as it does: SHAP values folded to the record's columns, reasons, and plots."""
