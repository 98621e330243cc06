"""The signed apt repository (``make repo``, tools/make-repo.sh) as the guest tests use it.

Built with the real script, served over HTTP on the host's loopback (a booted
guest shares the host network), and handed to a guest exactly as a fleet host
gets it: ``ecr-login.sources`` (deb822, the key inline in ``Signed-By:``) in
/etc/apt/sources.list.d, then ``apt-get update && apt-get install ecr-login``
by name. Shared by tests/test_repo.py and the lifecycle test, so that both
install the way issue #10.3 says hosts do.
"""

from __future__ import annotations

import functools
import http.server
import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest
from conftest import require_tool
from guest import Guest, Result

MAKE_REPO = Path(__file__).resolve().parent.parent / "tools" / "make-repo.sh"
GUEST_SOURCES = "/etc/apt/sources.list.d/ecr-login.sources"


def make_repo(out: Path, uri: str, *packages: Path, key: str | None = None, env: dict[str, str] | None = None) -> str:
    """Run tools/make-repo.sh (what ``make repo`` runs); return its stderr+stdout."""
    for tool in ("apt-ftparchive", "gpg", "dpkg-deb"):
        require_tool(tool)
    argv = ["bash", str(MAKE_REPO), "--uri", uri, "--out", str(out)]
    if key:
        argv += ["--key", key]
    done = subprocess.run(
        [*argv, *map(str, packages)], capture_output=True, text=True, check=False, env=env, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, done
    return done.stderr + done.stdout


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the repository directory; records the paths asked for instead of logging them."""

    requested: list[str]

    def log_message(self, format: str, *args: object) -> None:
        self.requested.append(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}".strip())


@contextmanager
def serve(directory: Path) -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 for ``directory`` (what `python3 -m http.server` does); yields (URL, requests)."""
    directory.mkdir(parents=True, exist_ok=True)
    requested: list[str] = []
    handler = type("Handler", (_Handler,), {"requested": requested})

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class SignedRepository:
    """out/repo as ``make repo`` writes it, served at ``url``; ``requested`` lists what was asked of it."""

    directory: Path
    url: str
    requested: list[str]

    def publish(self, *packages: Path) -> str:
        """Add packages with tools/make-repo.sh (earlier ones stay) and sign anew, as a release does."""
        return make_repo(self.directory, self.url, *packages)

    @property
    def sources(self) -> str:
        """The deb822 entry hosts get: signature checked against the inline key, never trusted=yes."""
        sources = (self.directory / "ecr-login.sources").read_text()
        assert "Signed-By:" in sources and "trusted" not in sources.lower(), sources
        return sources

    def add_to(self, guest: Guest) -> None:
        """What a fleet host does first: the sources entry into /etc/apt/sources.list.d."""
        guest.write_file(GUEST_SOURCES, self.sources)

    def update(self, guest: Guest) -> Result:
        """``apt-get update`` in the guest after a publish: the new InRelease fetched and verified, no warning about it."""
        first = len(self.requested)
        update = guest.run(["apt-get", "-q", "update"], timeout=300)
        ours = [line for line in (update.stdout + update.stderr).splitlines() if self.url in line]
        assert any(line.startswith("Get:") and "InRelease" in line for line in ours), update
        assert not [line for line in ours if re.match(r"(W|E|Err):", line)], update
        assert "GET /dists/stable/InRelease 200" in self.requested[first:], self.requested
        return update

    def assert_candidate(self, guest: Guest, version: str) -> None:
        """apt would install ``version`` of ecr-login by name, from this repository."""
        policy = guest.run(["apt-cache", "policy", "ecr-login"]).stdout
        assert f"Candidate: {version}" in policy and self.url in policy, policy

    def assert_downloaded(self, package: Path) -> None:
        """The guest fetched ``package`` from this repository's pool (not from a file given to apt)."""
        wanted = f"/pool/main/e/ecr-login/{package.name}"
        assert any(wanted in unquote(line) for line in self.requested), (wanted, self.requested)


@contextmanager
def signed_repository(directory: Path) -> Iterator[SignedRepository]:
    """A repository directory served on loopback for as long as the block runs; publish into it."""
    with serve(directory) as (url, requested):
        yield SignedRepository(directory, url, requested)


@pytest.fixture
def signed_repo(tmp_path: Path) -> Iterator[SignedRepository]:
    """An empty repository served on loopback for the test (import it as a fixture); publish into it."""
    with signed_repository(tmp_path / "repo") as repo:
        yield repo
