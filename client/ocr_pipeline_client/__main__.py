"""`python -m ocr_pipeline_client ...`: the `ocr` command without its console script."""

import sys

from ocr_pipeline_client.cli import main

sys.exit(main(prog="ocr"))
