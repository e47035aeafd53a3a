"""Where a role's Redis is: a plain server or a Redis Cluster, read from its URL.

Accepted URLs (an `async+` prefix, which `limits` uses, is accepted too and ignored):

- `redis://[user:password@]host:port/db`, `rediss://…` (TLS), `unix:///path/to.sock?db=0`:
  one server, as redis-py reads them;
- `redis+cluster://[user:password@]host:port[,host:port…]`, `rediss+cluster://…` (TLS): a Redis
  Cluster, found from any of the listed nodes (`limits`' own form for its cluster storage).

Error messages name the scheme only, never the URL: it may hold a password.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_PORT = 6379
PLAIN_SCHEMES = {"redis", "rediss", "unix"}
CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}  # scheme -> TLS


@dataclass(frozen=True)
class RedisAddress:
    url: str  # without `async+`; for one server, what redis-py's from_url takes
    nodes: tuple[tuple[str, int], ...]  # (host, port); (path, 0) for a Unix socket
    cluster: bool = False
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @property
    def scheme(self) -> str:
        return self.url.partition("://")[0]

    @property
    def limits_url(self) -> str:
        """The URL `limits` reads: its async storages take `async+` schemes, Unix sockets as
        `redis+unix`, and clusters only as `redis+cluster` (TLS goes to it as an option)."""
        scheme, _, rest = self.url.partition("://")
        if self.cluster:
            return f"async+redis+cluster://{rest}"
        return f"async+redis+unix://{rest}" if scheme == "unix" else f"async+{self.url}"

    def shares_server_with(self, other: RedisAddress) -> bool:
        """Whether both may be the same Redis (same memory, same eviction): one node in
        common. Two databases of one server are one Redis."""
        return bool(set(self.nodes) & set(other.nodes))


def parse_url(url: str) -> RedisAddress:
    """The address in `url`; ValueError for anything else."""
    url = url.removeprefix("async+")
    scheme = url.partition("://")[0]
    if scheme in CLUSTER_SCHEMES:
        return _cluster(url, tls=CLUSTER_SCHEMES[scheme])
    if scheme not in PLAIN_SCHEMES:
        raise ValueError(f"unsupported Redis URL scheme {scheme!r}")
    parts = urlsplit(url)
    if scheme == "unix":
        return RedisAddress(url, ((parts.path, 0),))
    try:
        node = ((parts.hostname or "localhost").lower(), parts.port or DEFAULT_PORT)
    except ValueError:
        raise ValueError(f"invalid port in a {scheme!r} URL") from None
    return RedisAddress(url, (node,), tls=scheme == "rediss")


def _cluster(url: str, tls: bool) -> RedisAddress:
    scheme, _, rest = url.partition("://")
    location, _, path = rest.partition("/")
    if path.strip("/") not in ("", "0"):
        raise ValueError(f"a {scheme!r} URL has no database number (a cluster has only 0)")
    credentials, _, hosts = location.rpartition("@")
    username, _, password = credentials.partition(":")
    nodes = tuple(_node(host, scheme) for host in hosts.split(",") if host)
    if not nodes:
        raise ValueError(f"a {scheme!r} URL names no node")
    return RedisAddress(
        url,
        nodes,
        cluster=True,
        tls=tls,
        username=unquote(username) or None,
        password=unquote(password) or None,
    )


def _node(text: str, scheme: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon or "]" in port:  # no port given (an IPv6 literal's colons are in brackets)
        host, port = text, str(DEFAULT_PORT)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid port in a {scheme!r} URL")
    return host.strip("[]").lower(), int(port)
