"""Train painml from a config: ``python train.py --config configs/default.yaml``.

A thin entry point to ``painml train``; see ``python train.py --help``.
"""

import sys

from painml.cli.main import app

if __name__ == "__main__":
    sys.exit(app(["train", *sys.argv[1:]]))
