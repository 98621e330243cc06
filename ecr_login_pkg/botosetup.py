"""botocore, loaded for one GetAuthorizationToken call and nothing more.

Two things botocore does at every start that this call does not need, each cut
without touching what botocore computes: importing pyOpenSSL (``load_botocore``)
and listing every service it has a model for, twice, before loading ECR's
(``lean_loader``). Only a run that fetches a token comes here.
"""

from __future__ import annotations

import functools
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from botocore.loaders import Loader


def load_botocore() -> None:
    """Import botocore (session, client, utils) without loading pyOpenSSL and cryptography.

    botocore.httpsession imports ``urllib3.contrib.pyopenssl`` only to take back the
    standard library's SSLContext (``orig_util_SSLContext``), and falls back to urllib3's
    ``util.ssl_.SSLContext`` when that import fails: the same class, as nothing here ever
    injects pyOpenSSL into urllib3. Where python3-openssl is installed (Debian's
    python3-requests recommends it) the first way loads pyOpenSSL and cryptography for
    nothing: 30 ms and 6 MB of a forced run. So the import is made to fail, only while
    botocore itself is imported.
    """
    if "botocore.session" in sys.modules:
        return
    hidden = "urllib3.contrib.pyopenssl"
    hide = hidden not in sys.modules
    if hide:
        sys.modules[hidden] = None  # type: ignore[assignment]  # an "import" of a None entry raises ImportError
    try:
        import botocore.session  # noqa: F401  # imports httpsession, utils and client
    finally:
        if hide and sys.modules.get(hidden, "") is None:
            del sys.modules[hidden]


def lean_loader(data_path: str | None) -> Loader:
    """botocore's data loader, with the search path ``create_loader`` builds from ``data_path``
    (``AWS_DATA_PATH``), that checks a service name by looking at that service's directory.

    ``Loader.load_service_model`` first lists every service (one directory read per service
    and version: 14 ms on Debian's botocore, 19 ms on 1.43) only to see that the name is
    among them. The answer is the same; a full listing is still made for anyone iterating.
    """
    paths = [os.path.expanduser(os.path.expandvars(path)) for path in data_path.split(os.pathsep)] if data_path else []
    return _lean_loader_class()(extra_search_paths=paths)


@functools.cache
def _lean_loader_class() -> type[Loader]:
    from botocore.loaders import Loader

    class LeanLoader(Loader):
        def list_available_services(self, type_name: str) -> KnownServices:
            return KnownServices(self, type_name)

    return LeanLoader


class KnownServices:
    """The services with a ``type_name`` model: ``in`` looks for the one asked about,
    iterating lists them all (what ``Loader.list_available_services`` returns)."""

    def __init__(self, loader: Loader, type_name: str) -> None:
        self.loader = loader
        self.type_name = type_name

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or not name or os.sep in name or name.startswith("."):
            return False
        for base in self.loader.search_paths:
            directory = os.path.join(base, name)
            try:
                versions = os.listdir(directory)
            except OSError:
                continue
            if any(self.loader.file_loader.exists(os.path.join(directory, version, self.type_name))
                   for version in versions):
                return True
        return False

    def _all(self) -> list[str]:
        from botocore.loaders import Loader

        return list(Loader.list_available_services(self.loader, self.type_name))

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())
