"""Score patients with a trained model: ``python serve.py predict|batch|http --help``.

A thin entry point to ``painml serve``.
"""

from painml.cli.serve import serve_app

if __name__ == "__main__":
    serve_app()
