"""Packaging metadata for ecr-login (setuptools; also read by stdeb and pybuild).

Built through pyproject.toml's [build-system] (PEP 517: pybuild's pyproject
plugin on Debian, %pyproject_wheel on Fedora/RHEL). The metadata stays here,
not in a [project] table, because RHEL 9's setuptools 53 predates PEP 621 and
stdeb reads setup.py.
"""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "ecr_login_pkg" / "__init__.py").read_text()).group(1)

setup(
    name="ecr-login",
    version=VERSION,
    description="Keep Amazon ECR registry logins fresh on build hosts",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    author="ecr-login developers",
    author_email="ecr-login@example.org",
    maintainer="ecr-login developers",
    maintainer_email="ecr-login@example.org",
    license="Apache-2.0",
    url="https://example.org/ecr-login",
    packages=find_packages(include=["ecr_login_pkg", "ecr_login_pkg.*"]),
    python_requires=">=3.9",
    # The code imports botocore only (see docs/architecture.md), never boto3.
    install_requires=["botocore"],
    entry_points={"console_scripts": ["ecr-login = ecr_login_pkg.cli:run"]},
    classifiers=[
        "Environment :: Console",
        "Intended Audience :: System Administrators",
        "License :: OSI Approved :: Apache Software License",
        "Operating System :: POSIX :: Linux",
        "Programming Language :: Python :: 3",
        "Topic :: System :: Systems Administration",
    ],
)
