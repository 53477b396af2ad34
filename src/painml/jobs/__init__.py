"""The jobs: short scripts that chain the stages below (train, promote, explain, report, quickstart)."""
