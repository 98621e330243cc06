"""Allow ``python3 -m ecr_login_pkg``."""

from .cli import run

run()
