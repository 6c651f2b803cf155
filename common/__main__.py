"""`python -m common ...`: see common/cli.py."""

import sys

from common.cli import main

sys.exit(main())
