"""The ``painml`` command."""
