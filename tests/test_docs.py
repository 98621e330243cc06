"""What users copy from the docs must work: the README's example and the shipped configuration load."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import REPO_ROOT

from ecr_login_pkg.config import DEFAULTS_KEYS, REGISTRY_KEYS, Overrides, load

ENV = {"HOME": "/nonexistent", "PATH": "", "AWS_REGION": "eu-west-1"}


def test_readme_configuration_example_loads(tmp_path: Path) -> None:
    block = re.search(r"```ini\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.S)
    assert block is not None
    path = tmp_path / "readme.conf"
    path.write_text(block.group(1))
    targets = load(Overrides(config_path=str(path)), ENV).targets
    assert [t.registry.host for t in targets if t.registry] == [
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "210987654321.dkr.ecr.us-east-1.amazonaws.com", "public.ecr.aws"]


def test_shipped_configuration_loads_and_its_commented_examples_too(tmp_path: Path) -> None:
    shipped = (REPO_ROOT / "etc" / "ecr-login.conf").read_text()
    path = tmp_path / "shipped.conf"
    path.write_text(shipped)
    (default,) = load(Overrides(config_path=str(path)), ENV).targets
    assert default.registry is None  # as installed: the zero-config default
    uncommented = re.sub(r"^#(?=\[|[a-z_]+ = )", "", shipped, flags=re.M)
    path.write_text(uncommented)
    settings = load(Overrides(config_path=str(path)), ENV)
    assert len(settings.targets) == 3
    mentioned = set(re.findall(r"^#?([a-z_]+) = ", shipped, flags=re.M))
    assert mentioned <= DEFAULTS_KEYS | REGISTRY_KEYS
    assert mentioned >= DEFAULTS_KEYS  # every [defaults] key is shown in the example
