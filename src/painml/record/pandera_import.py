"""pandera, imported without ``pyspark.pandas``: the one place painml imports it.

pandera imports ``pyspark.pandas`` whenever pyspark is installed: seconds on every
command and a pandas-3 warning each time. painml's checks never run on Spark frames
(its Spark scoring hands pandas frames to the same checks), and pandera treats the
blocked import as pyspark being absent (also in the checks module it loads at
the first validation, when something else has loaded pyspark). A module of its own, so that importing the
record's column table stays free of pandas.
"""

from __future__ import annotations

import sys


def _import_without_spark():
    """Import ``pandera.pandas`` with ``pyspark`` blocked, unless something has imported pyspark's pandas API."""
    if "pandera.pandas" in sys.modules or "pyspark.pandas" in sys.modules:
        import pandera.pandas

        return pandera.pandas
    blocked = [name for name in ("pyspark", "pyspark.pandas") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # an import of it raises ImportError
    try:
        # the checks module is otherwise imported at the first validation, trying pyspark's pandas API then
        import pandera.backends.pandas.builtin_checks
        import pandera.pandas
    finally:
        for name in blocked:
            del sys.modules[name]
    return pandera.pandas


pa = _import_without_spark()

from pandera.errors import SchemaErrors  # noqa: E402  (after pandera is imported as above)

__all__ = ["SchemaErrors", "pa"]
