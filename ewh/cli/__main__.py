"""`python -m ewh.cli ...`: the same as the `ewh` command."""

import sys

from ewh.cli.main import main

sys.exit(main())
