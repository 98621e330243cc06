"""Ask a registry whether it accepts a login, as ``docker login`` does, storing nothing.

docker's handshake: ``GET /v2/`` without credentials; the 401's ``WWW-Authenticate``
names the scheme. ``Basic`` (ECR, docker-registry with htpasswd): the same GET with
the credentials. ``Bearer`` (public.ecr.aws): a token from the challenge's realm,
asked for with the credentials. HTTPS first; a loopback registry (in docker's
default insecure range) is tried over plain HTTP when HTTPS fails. Proxies come
from the environment (``HTTPS_PROXY``, ``NO_PROXY``...) as docker's Go client takes
them, which never sends loopback traffic through a proxy.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message

from . import __version__
from .errors import ConfigError, DeniedError, TemporaryError
from .logs import redact, register_secret

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class _Unreachable(Exception):
    """No HTTP answer at all from this scheme (refused, reset, TLS spoken to plain HTTP...)."""


def is_loopback(address: str) -> bool:
    """``address`` (HOST[:PORT]) names this machine: localhost or a loopback IP."""
    host = address.rsplit("]", 1)[0].lstrip("[") if address.startswith("[") else address.rsplit(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_login(address: str, username: str, password: str, timeout: float = 10.0) -> str:
    """Say how ``address`` accepted ``username``/``password``; raise when it did not.

    DeniedError: the registry refused them (401/403). TemporaryError: no answer, or a
    5xx. ConfigError: an answer no registry gives (not a 200 or 401 at ``/v2/``), or a
    TLS certificate this host does not trust.
    """
    basic = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    register_secret(basic[len("Basic "):])
    loopback = is_loopback(address)
    # Go's http.ProxyFromEnvironment never proxies loopback; urllib would.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({} if loopback else None))
    problems = []
    for scheme in ("https", "http") if loopback else ("https",):
        try:
            return _handshake(opener, f"{scheme}://{address}", address, basic, timeout)
        except _Unreachable as exc:
            problems.append(f"{scheme}: {exc}")
    raise TemporaryError(redact(f"{address}: no answer from the registry ({'; '.join(problems)})"))


def _handshake(opener: urllib.request.OpenerDirector, base: str, address: str, basic: str, timeout: float) -> str:
    url = f"{base}/v2/"
    status, headers = _get(opener, url, None, timeout)
    if status == 200:
        return f"{url} needs no login (HTTP 200 without credentials)"
    if status != 401:
        raise _unexpected(address, url, status)
    challenge = headers.get("WWW-Authenticate", "")
    scheme = challenge.split(" ", 1)[0].lower()
    params = dict(_CHALLENGE_PARAM.findall(challenge))
    if scheme == "basic":
        asked = url
    elif scheme == "bearer" and params.get("realm", "").startswith(("https://", "http://")):
        query = {"account": "AWS"}
        if params.get("service"):
            query["service"] = params["service"]
        asked = params["realm"] + ("&" if "?" in params["realm"] else "?") + urllib.parse.urlencode(query)
    else:
        raise ConfigError(f"{address}: {url} asks for an authentication docker cannot answer ({challenge[:80]!r})")
    status, _ = _get(opener, asked, basic, timeout)
    if status == 200:
        return f"accepted the login ({scheme} authentication at {asked.split('?', 1)[0]})"
    if status in (401, 403):
        raise DeniedError(f"{address} refused the login (HTTP {status} from {asked.split('?', 1)[0]})")
    raise _unexpected(address, asked.split("?", 1)[0], status)


def _unexpected(address: str, url: str, status: int) -> Exception:
    if status >= 500 or status in (408, 429):
        return TemporaryError(f"{address}: {url} answered HTTP {status}")
    return ConfigError(f"{address}: {url} answered HTTP {status}, not what a registry answers (is it a registry?)")


def _get(opener: urllib.request.OpenerDirector, url: str, authorization: str | None, timeout: float) -> tuple[int, Message]:
    request = urllib.request.Request(url, headers={"User-Agent": f"ecr-login/{__version__} doctor"})
    if authorization:
        request.add_unredirected_header("Authorization", authorization)
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(65536)
            return int(response.status), response.headers
    except urllib.error.HTTPError as exc:
        exc.read(65536)
        return int(exc.code), exc.headers
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLCertVerificationError):
            raise ConfigError(
                f"{url}: the registry's TLS certificate is not trusted here ({exc.reason.verify_message})"
            ) from None
        raise _Unreachable(str(exc.reason)) from None
    except (OSError, ValueError) as exc:  # timeouts, resets, a malformed status line
        raise _Unreachable(str(exc) or type(exc).__name__) from None
