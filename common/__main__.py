"""`python -m common ...`: the same commands as `ocr-pipeline`, for a function image (see common/cli.py)."""

import sys

from common.cli import main

sys.exit(main(prog="python -m common"))
