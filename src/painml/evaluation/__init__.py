"""How well a model works: metrics on held-out rows, subgroups, screening-tool baselines, the ceiling, and
their plots."""
