"""The patient record: its columns, the checks every input passes, file reading and the words shown to people.

The lowest layer: imports nothing else of painml.
"""
