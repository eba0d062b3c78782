"""`python -m actionstyle_client ...`: the same as the `actionstyle` command."""

import sys

from actionstyle_client.cli import main

sys.exit(main())
