"""Guards for HTTP requests that the service sends to URLs its users register.

A model's endpoint URL comes from a user, so a request to it could reach services that only the
server can see: the loopback interface, the private network, or a cloud metadata endpoint that
hands out credentials. ``check_url`` rejects such URLs before anything is sent, and
``safe_client`` returns an ``httpx.AsyncClient`` that applies the same check to every request it
sends, including redirect hops, and connects only to the addresses that the check approved.

How the client pins the approved address: its transport is an ``httpx.AsyncHTTPTransport`` whose
httpcore connection pool uses a custom network backend. The transport runs ``check_url`` and
stores the approved addresses for the request's host and port in a context variable. httpcore
opens new connections in the task that sends the request, so the backend then reads that
variable, connects the TCP socket to an approved address, and never resolves the name again. The
URL is not rewritten, so the Host header, the TLS server name (SNI) and certificate verification
all use the host name from the URL. A DNS answer that changes between the check and the
connection therefore cannot redirect the connection. If the backend finds no approved addresses
for a host, it resolves and checks the host itself before it connects.
"""

from __future__ import annotations

import contextvars
import ipaddress
import re
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

ALLOWLIST_SETTING = "REALUNIFY_OUTBOUND_ALLOWLIST"
ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}

# Instance metadata services, which hand out cloud credentials: AWS, GCP, Azure and Oracle use
# 169.254.169.254, AWS also uses fd00:ec2::254 over IPv6, and Alibaba Cloud uses 100.100.100.200.
CLOUD_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
RFC1918_NETWORKS = tuple(
    ipaddress.ip_network(network) for network in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
# The NAT64 well-known prefix (RFC 6052): the last 32 bits are the IPv4 address it translates to.
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")

HOST_NAME_PATTERN = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*$")


class UnsafeURL(ValueError):
    """A URL that the service must not call: wrong scheme, credentials in it, or a host that is
    not public and not allowlisted."""


class ResponseTooLarge(Exception):
    """A response body longer than the configured maximum."""


@dataclass(frozen=True)
class OutboundPolicy:
    """Limits for requests to user-registered endpoints.

    ``allowlist`` entries are IP networks in CIDR notation (``"10.1.0.0/16"``, where a bare
    address means that single address) or exact host names (``"models.internal"``). A host name
    entry approves every address that name resolves to. A cloud metadata address passes only when
    an entry names exactly that one address (``"169.254.169.254/32"``), so a broad network or a
    host name entry never opens it by accident. ``timeout_seconds`` bounds each request as a
    whole: connecting, sending, waiting for the headers and reading the body.
    """

    allowlist: tuple[str, ...] = ()
    max_response_bytes: int = 64 * 1024 * 1024
    timeout_seconds: float = 120.0
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)
    _host_names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_response_bytes <= 0:
            raise ValueError(f"max_response_bytes must be positive, got {self.max_response_bytes}")
        if self.timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {self.timeout_seconds}")

        networks: list[IPNetwork] = []
        host_names: set[str] = set()
        for entry in self.allowlist:
            parsed = _parse_allowlist_entry(entry)
            if isinstance(parsed, str):
                host_names.add(parsed)
            else:
                networks.append(parsed)
        object.__setattr__(self, "_networks", tuple(networks))
        object.__setattr__(self, "_host_names", frozenset(host_names))

    @classmethod
    def from_setting(cls, value: str, **kwargs: Any) -> OutboundPolicy:
        """Build a policy from a comma-separated allowlist, such as the value of
        REALUNIFY_OUTBOUND_ALLOWLIST. Empty entries are skipped."""
        entries = tuple(entry.strip() for entry in value.split(",") if entry.strip())
        return cls(allowlist=entries, **kwargs)

    def allows_host_name(self, host: str) -> bool:
        return _normalise_host_name(host) in self._host_names

    def allows_address(self, address: IPAddress) -> bool:
        candidates = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(
            candidate.version == network.version and candidate in network
            for candidate in candidates
            for network in self._networks
        )

    def allows_metadata_address(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(
            network.num_addresses == 1 and network.network_address == address
            for network in self._networks
        )


def _parse_allowlist_entry(entry: str) -> IPNetwork | str:
    text = entry.strip()
    if not text:
        raise ValueError(f"empty entry in {ALLOWLIST_SETTING}")
    if "*" in text:
        raise ValueError(
            f"invalid {ALLOWLIST_SETTING} entry {entry!r}: wildcards are not supported; "
            "list each host name or use a CIDR network"
        )
    if "/" in text or ":" in text or text.replace(".", "").isdigit():
        try:
            return ipaddress.ip_network(text)
        except ValueError as error:
            raise ValueError(
                f"invalid {ALLOWLIST_SETTING} entry {entry!r}: {error}; "
                "write networks with the host bits zeroed, such as 10.1.0.0/16"
            ) from error

    host = _normalise_host_name(text)
    if not HOST_NAME_PATTERN.match(host):
        raise ValueError(
            f"invalid {ALLOWLIST_SETTING} entry {entry!r}: expected a CIDR network such as "
            "10.1.0.0/16 or a host name such as models.internal"
        )
    return host


def _normalise_host_name(host: str) -> str:
    """Lower-case a host name, convert it to its IDNA (ASCII) form and drop a trailing dot."""
    host = host.strip().rstrip(".").lower()
    try:
        host = httpx.URL(f"http://{host}/").raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError):
        return host
    return host.rstrip(".")


def resolve_host(host: str, port: int) -> list[str]:
    """Resolve a host name to its IP addresses with ``socket.getaddrinfo``, in the order returned.

    Blocks while the lookup runs, and raises ``OSError`` (``socket.gaierror``) if it fails.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def check_url(url: str, policy: OutboundPolicy, resolve: Resolver = resolve_host) -> list[str]:
    """Check that the service may call ``url`` and return the IP addresses it approved.

    Raises ``UnsafeURL`` for a scheme other than http or https, a URL without a host, a URL with
    a user name or password in it, and a host that does not resolve. It also raises it for a host
    with any address that is not public, unless the allowlist covers that address. Non-public
    addresses are loopback, private, link-local, multicast, unspecified, reserved, carrier-grade
    NAT, cloud metadata, and the IPv6 forms that embed one of these. Every address of a name must
    pass. This call blocks during the DNS lookup, so call it from a sync endpoint or a worker
    thread, or with ``anyio.to_thread.run_sync`` from async code.
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise UnsafeURL(f"invalid URL {url!r}: {error}") from error

    if parsed.scheme not in ALLOWED_SCHEMES:
        scheme = parsed.scheme or "(none)"
        raise UnsafeURL(
            f"URL scheme {scheme} is not allowed in {url!r}; use an http:// or https:// URL"
        )
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise UnsafeURL(f"URL {url!r} has no host; use a URL such as https://api.example.com/v1")
    if parsed.userinfo:
        raise UnsafeURL(
            f"URL for host {parsed.host} contains a user name or password; remove it from the "
            "URL and enter the API key in its own field"
        )
    port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    return approve_host(host, port, policy, resolve)


def approve_host(host: str, port: int, policy: OutboundPolicy, resolve: Resolver) -> list[str]:
    """Resolve ``host`` (an IDNA host name or an IP literal) and return the approved addresses.

    Raises ``UnsafeURL`` as ``check_url`` describes. Blocks during the DNS lookup.
    """
    name = _normalise_host_name(host)
    literal = _parse_ip_literal(name)
    if literal is not None:
        _reject_if_unsafe(literal, name, policy, resolved=False)
        return [str(literal)]

    try:
        answers = resolve(name, port)
    except (OSError, UnicodeError) as error:
        raise UnsafeURL(
            f"host {name} could not be resolved ({error}); check the host name in the URL"
        ) from error
    if not answers:
        raise UnsafeURL(f"host {name} resolved to no addresses; check the host name in the URL")

    addresses: list[IPAddress] = []
    for answer in answers:
        try:
            addresses.append(ipaddress.ip_address(answer))
        except ValueError as error:
            raise UnsafeURL(f"host {name} resolved to an invalid address {answer!r}") from error

    name_allowed = policy.allows_host_name(name)
    for address in addresses:
        _reject_if_unsafe(address, name, policy, resolved=True, name_allowed=name_allowed)
    return [str(address) for address in addresses]


def _parse_ip_literal(host: str) -> IPAddress | None:
    """Parse an IP literal, including the legacy IPv4 forms that ``inet_aton`` and browsers
    accept (``2130706433``, ``0x7f.1``, ``0177.0.0.1``). Returns None for a host name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass

    labels = host.split(".")
    last = labels[-1].lower()
    ends_in_number = last.isdigit() or (last.startswith("0x") and _is_hex(last[2:]))
    if not ends_in_number:
        return None

    value = _parse_legacy_ipv4(labels)
    if value is None:
        raise UnsafeURL(
            f"host {host} is neither a valid IPv4 address nor a host name; check the URL"
        )
    return ipaddress.IPv4Address(value)


def _is_hex(text: str) -> bool:
    return all(character in "0123456789abcdef" for character in text)


def _parse_legacy_ipv4(labels: list[str]) -> int | None:
    """Return the address that 1 to 4 decimal, octal (leading 0) or hex (0x) parts denote, the
    last part filling the remaining bytes, or None if the parts do not form an address."""
    if not 1 <= len(labels) <= 4:
        return None
    numbers: list[int] = []
    for label in labels:
        text = label.lower()
        try:
            if text.startswith("0x"):
                number = int(text[2:] or "0", 16)
            elif len(text) > 1 and text.startswith("0"):
                number = int(text[1:], 8)
            else:
                number = int(text, 10)
        except ValueError:
            return None
        numbers.append(number)

    *leading, last = numbers
    if any(number > 255 for number in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return value


def _reject_if_unsafe(
    address: IPAddress,
    host: str,
    policy: OutboundPolicy,
    *,
    resolved: bool,
    name_allowed: bool = False,
) -> None:
    reason = blocked_reason(address)
    if reason is None:
        return
    if _is_metadata(address):
        if policy.allows_metadata_address(address):
            return
    elif name_allowed or policy.allows_address(address):
        return

    if resolved:
        subject = f"host {host} resolves to {address}, {reason}"
    elif str(address) != host:
        subject = f"host {host} is {address}, {reason}"
    else:
        subject = f"host {host} is {reason}"
    raise UnsafeURL(
        f"{subject}; the service only calls public addresses unless an administrator "
        f"allowlists this one ({ALLOWLIST_SETTING})"
    )


def _is_metadata(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            address = embedded[1]
    return address in CLOUD_METADATA_ADDRESSES


def blocked_reason(address: IPAddress) -> str | None:
    """Return why the service must not call ``address`` (for example "a loopback address"), or
    None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            form, ipv4 = embedded
            inner = blocked_reason(ipv4)
            return None if inner is None else f"{form} of {ipv4}, {inner}"

    if address in CLOUD_METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.version == 4 and address in CARRIER_GRADE_NAT:
        return "a carrier-grade NAT address"
    if address.is_multicast:
        return "a multicast address"
    if any(address in network for network in (*RFC1918_NETWORKS, UNIQUE_LOCAL)):
        return "a private address"
    if address.is_reserved or (address.version == 6 and address.is_site_local):
        return "a reserved address"
    if not address.is_global:
        return "a special-purpose address that is not publicly routable"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """Return the IPv4 address that an IPv4-mapped, NAT64 or 6to4 address reaches, if any."""
    if address.ipv4_mapped is not None:
        return "an IPv4-mapped form", address.ipv4_mapped
    if address in NAT64_PREFIX:
        return "a NAT64 form", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return "a 6to4 form", address.sixtofour
    return None


# Addresses approved by the transport for the request being sent, keyed by (host, port).
_approved_addresses: contextvars.ContextVar[dict[tuple[str, int], list[str]] | None] = (
    contextvars.ContextVar("realunify_outbound_approved_addresses", default=None)
)


class _PinnedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Network backend that connects only to approved addresses, never to a name."""

    def __init__(self, policy: OutboundPolicy, resolve: Resolver) -> None:
        self._policy = policy
        self._resolve = resolve
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        approved = (_approved_addresses.get() or {}).get((host, port))
        if approved is None:
            approved = await anyio.to_thread.run_sync(
                approve_host, host, port, self._policy, self._resolve, abandon_on_cancel=True
            )

        last_error: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in approved:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
        assert last_error is not None  # approve_host never returns an empty list
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("outbound requests to user endpoints use TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedByteStream(httpx.AsyncByteStream):
    """Response body that enforces the request deadline and the maximum size on the raw bytes."""

    def __init__(
        self,
        inner: httpx.AsyncByteStream,
        request: httpx.Request,
        policy: OutboundPolicy,
        deadline: float,
    ) -> None:
        self._inner = inner
        self._request = request
        self._policy = policy
        self._deadline = deadline

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = self._inner.__aiter__()
        received = 0
        while True:
            remaining = self._deadline - anyio.current_time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                with anyio.fail_after(remaining):
                    chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise _deadline_error(self._request, self._policy.timeout_seconds) from None

            received += len(chunk)
            if received > self._policy.max_response_bytes:
                raise _too_large_error(self._request.url, self._policy.max_response_bytes)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def _deadline_error(request: httpx.Request, timeout_seconds: float) -> httpx.TimeoutException:
    return httpx.TimeoutException(
        f"request to {request.url.host} timed out: it did not finish within {timeout_seconds} s "
        "(the outbound request timeout)",
        request=request,
    )


def _too_large_error(url: httpx.URL, max_bytes: int) -> ResponseTooLarge:
    return ResponseTooLarge(
        f"response from {url.host} is larger than the limit of {max_bytes} bytes; the endpoint "
        "must return smaller responses, or an administrator can raise the limit"
    )


class _SafeTransport(httpx.AsyncHTTPTransport):
    """Transport that checks each request's URL and connects only to the approved addresses."""

    def __init__(
        self,
        policy: OutboundPolicy,
        resolve: Resolver,
        *,
        verify: ssl.SSLContext | bool,
        http2: bool,
        limits: httpx.Limits,
    ) -> None:
        ssl_context = httpx.create_ssl_context(verify=verify)
        super().__init__(verify=ssl_context, http2=http2, limits=limits, trust_env=False)
        # NOTE: replaces httpx's private `_pool` (present from httpx 0.18 through 0.29), because
        # AsyncHTTPTransport has no parameter for the httpcore network backend. A test checks it.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=http2,
            network_backend=_PinnedNetworkBackend(policy, resolve),
        )
        self._policy = policy
        self._resolve = resolve

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        deadline = anyio.current_time() + self._policy.timeout_seconds
        try:
            with anyio.fail_after(self._policy.timeout_seconds):
                response = await self._check_and_send(request)
        except TimeoutError:
            raise _deadline_error(request, self._policy.timeout_seconds) from None

        assert isinstance(response.stream, httpx.AsyncByteStream)
        max_bytes = self._policy.max_response_bytes
        declared_length = _content_length(response)
        if declared_length is not None and declared_length > max_bytes:
            await response.aclose()
            raise _too_large_error(request.url, max_bytes)

        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_GuardedByteStream(response.stream, request, self._policy, deadline),
            extensions=response.extensions,
        )

    async def _check_and_send(self, request: httpx.Request) -> httpx.Response:
        # A DNS lookup cannot be cancelled, so on timeout the worker thread is left to finish.
        approved = await anyio.to_thread.run_sync(
            check_url, str(request.url), self._policy, self._resolve, abandon_on_cancel=True
        )
        port = request.url.port or DEFAULT_PORTS[request.url.scheme]
        key = (request.url.raw_host.decode("ascii"), port)

        token = _approved_addresses.set({key: approved})
        try:
            return await super().handle_async_request(request)
        finally:
            _approved_addresses.reset(token)


# Client options that would bypass the checks or the policy's timeout.
_FORBIDDEN_CLIENT_OPTIONS = frozenset(
    {"transport", "mounts", "proxy", "app", "trust_env", "follow_redirects", "timeout"}
)


def safe_client(
    policy: OutboundPolicy,
    *,
    resolve: Resolver = resolve_host,
    verify: ssl.SSLContext | bool = True,
    http2: bool = False,
    limits: httpx.Limits = httpx.Limits(max_connections=100, max_keepalive_connections=20),
    **kwargs: Any,
) -> httpx.AsyncClient:
    """Return an ``httpx.AsyncClient`` for calling user-registered endpoints.

    Every request is checked with ``check_url`` before a connection opens, and raises
    ``UnsafeURL`` if rejected. Redirects are returned, not followed. A request that passes
    ``follow_redirects=True`` gets each hop checked the same way. Environment proxies and .netrc
    are ignored. The whole request,
    body included, must finish within ``policy.timeout_seconds`` (else ``httpx.TimeoutException``),
    and a body over ``policy.max_response_bytes`` raises ``ResponseTooLarge``. Other keyword
    arguments (``headers``, ``base_url``, ...) go to ``httpx.AsyncClient``.
    """
    forbidden = sorted(_FORBIDDEN_CLIENT_OPTIONS & kwargs.keys())
    if forbidden:
        raise TypeError(
            f"safe_client does not accept {', '.join(forbidden)}: the client sets them itself; "
            "change the OutboundPolicy instead"
        )
    transport = _SafeTransport(policy, resolve, verify=verify, http2=http2, limits=limits)
    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(policy.timeout_seconds),
        **kwargs,
    )


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


async def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """Read a streamed response body (from ``client.stream(...)``), decoded, and return it.

    Raises ``ResponseTooLarge`` as soon as the declared Content-Length or the bytes read so far
    exceed ``max_bytes``. One compressed chunk can expand in memory before the check runs.
    """
    declared_length = _content_length(response)
    if declared_length is not None and declared_length > max_bytes:
        raise _too_large_error(response.request.url, max_bytes)

    chunks: list[bytes] = []
    received = 0
    async for chunk in response.aiter_bytes():
        received += len(chunk)
        if received > max_bytes:
            raise _too_large_error(response.request.url, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)
