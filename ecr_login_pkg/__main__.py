"""Allow ``python3 -m ecr_login_pkg``."""

import sys

from .cli import main

sys.exit(main())
