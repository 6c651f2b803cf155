"""`python -m common.client ...`: the `ocr` command without its console script."""

import sys

from common.client.cli import main

sys.exit(main(prog="ocr"))
