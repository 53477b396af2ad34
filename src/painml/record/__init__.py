"""The patient record: its columns, the checks every input passes, file reading and the words shown to people.

The lowest layer: imports nothing else of painml.
"""

import sys


def _import_pandera_without_spark() -> None:
    """Import pandera while ``pyspark.pandas`` cannot be imported, unless something has imported it already.

    pandera imports ``pyspark.pandas`` whenever pyspark is installed: seconds on every command and a
    pandas-3 warning each time. painml's checks never run on Spark frames (its Spark scoring hands
    pandas frames to the same checks), and pandera treats the blocked import as pyspark being absent.
    """
    if "pandera.pandas" in sys.modules or "pyspark.pandas" in sys.modules:
        return
    blocked = [name for name in ("pyspark", "pyspark.pandas") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # an import of it raises ImportError
    try:
        import pandera.pandas  # noqa: F401  (the package and its pandas API both try)
    finally:
        for name in blocked:
            del sys.modules[name]


_import_pandera_without_spark()
