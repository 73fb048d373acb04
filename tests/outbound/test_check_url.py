"""check_url and OutboundPolicy: which URLs the service may call.

DNS answers come from a fake resolver, so these tests send no traffic at all.
"""

from __future__ import annotations

import re
import socket

import pytest

from app.outbound.safety import OutboundPolicy, UnsafeURL, check_url, resolve_host

PUBLIC_IPV4 = "93.184.216.34"
PUBLIC_IPV6 = "2606:2800:220:1:248:1893:25c8:1946"


class FakeResolver:
    """Resolver that returns addresses from a fixed table and records each lookup.

    An unknown name raises socket.gaierror, as getaddrinfo does.
    """

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.lookups: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.answers[host])


def make_resolver() -> FakeResolver:
    return FakeResolver(
        {
            "localhost": ["127.0.0.1", "::1"],
            "loopback.example": ["127.0.0.1"],
            "internal.example": ["10.0.0.1"],
            "private172.example": ["172.16.5.4"],
            "private192.example": ["192.168.1.1"],
            "metadata.example": ["169.254.169.254"],
            "ipv6-loopback.example": ["::1"],
            "ipv6-link-local.example": ["fe80::1"],
            "mapped.example": ["::ffff:127.0.0.1"],
            "unspecified.example": ["0.0.0.0"],
            "cgnat.example": ["100.64.0.1"],
            "multicast.example": ["224.0.0.1"],
            "mixed.example": [PUBLIC_IPV4, "10.0.0.1"],
            "public.example": [PUBLIC_IPV4, PUBLIC_IPV6],
            "models.internal": ["10.1.2.3"],
            "nothing.example": [],
            "garbage.example": ["not-an-address"],
        }
    )


# (URL, expected reason). Each host is an IP literal, so no lookup may happen.
LITERAL_CASES = [
    ("http://127.0.0.1/", "a loopback address"),
    ("http://10.0.0.1/", "a private address"),
    ("http://172.16.5.4/", "a private address"),
    ("http://192.168.1.1/", "a private address"),
    ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
    ("http://169.254.1.1/", "a link-local address"),
    ("http://[::1]/", "a loopback address"),
    ("http://[fe80::1]/", "a link-local address"),
    ("http://[::ffff:127.0.0.1]/", "an IPv4-mapped form of 127.0.0.1, a loopback address"),
    ("http://[::ffff:a00:1]/", "an IPv4-mapped form of 10.0.0.1, a private address"),
    ("http://0.0.0.0/", "an unspecified address"),
    ("http://[::]/", "an unspecified address"),
    ("http://100.64.0.1/", "a carrier-grade NAT address"),
    ("http://100.100.100.200/", "a cloud metadata address"),
    ("http://[fd00:ec2::254]/", "a cloud metadata address"),
    ("http://224.0.0.1/", "a multicast address"),
    ("http://[ff02::1]/", "a multicast address"),
    ("http://[fc00::1]/", "a private address"),
    ("http://240.0.0.1/", "a reserved address"),
    ("http://198.18.0.1/", "not publicly routable"),
    ("http://[64:ff9b::a00:1]/", "a NAT64 form of 10.0.0.1, a private address"),
    ("http://[2002:7f00:1::]/", "a 6to4 form of 127.0.0.1, a loopback address"),
    ("http://2130706433/", "127.0.0.1, a loopback address"),
    ("http://0x7f.1/", "127.0.0.1, a loopback address"),
    ("http://017700000001/", "127.0.0.1, a loopback address"),
    ("http://127.1/", "127.0.0.1, a loopback address"),
    ("https://0xa9.254.169.254/", "169.254.169.254, a cloud metadata address"),
]


@pytest.mark.parametrize(("url", "reason"), LITERAL_CASES)
def test_ip_literal_rejected(url: str, reason: str) -> None:
    resolver = make_resolver()

    with pytest.raises(UnsafeURL) as caught:
        check_url(url, OutboundPolicy(), resolve=resolver)

    assert reason in str(caught.value)
    assert "REALUNIFY_OUTBOUND_ALLOWLIST" in str(caught.value)
    assert resolver.lookups == []


NAME_CASES = [
    ("localhost", "127.0.0.1, a loopback address"),
    ("loopback.example", "127.0.0.1, a loopback address"),
    ("internal.example", "10.0.0.1, a private address"),
    ("private172.example", "172.16.5.4, a private address"),
    ("private192.example", "192.168.1.1, a private address"),
    ("metadata.example", "169.254.169.254, a cloud metadata address"),
    ("ipv6-loopback.example", "::1, a loopback address"),
    ("ipv6-link-local.example", "fe80::1, a link-local address"),
    ("mapped.example", "an IPv4-mapped form of 127.0.0.1"),
    ("unspecified.example", "0.0.0.0, an unspecified address"),
    ("cgnat.example", "100.64.0.1, a carrier-grade NAT address"),
    ("multicast.example", "224.0.0.1, a multicast address"),
    ("mixed.example", "10.0.0.1, a private address"),
]


@pytest.mark.parametrize(("host", "reason"), NAME_CASES)
def test_name_with_blocked_address_rejected(host: str, reason: str) -> None:
    resolver = make_resolver()

    with pytest.raises(UnsafeURL) as caught:
        check_url(f"https://{host}:8443/v1/chat/completions", OutboundPolicy(), resolve=resolver)

    assert f"host {host} resolves to" in str(caught.value)
    assert reason in str(caught.value)
    assert resolver.lookups == [(host, 8443)]


def test_rejection_message_text() -> None:
    with pytest.raises(UnsafeURL) as caught:
        check_url("http://localhost/", OutboundPolicy(), resolve=make_resolver())

    assert str(caught.value) == (
        "host localhost resolves to 127.0.0.1, a loopback address; the service only calls "
        "public addresses unless an administrator allowlists this one "
        "(REALUNIFY_OUTBOUND_ALLOWLIST)"
    )


def test_host_name_case_and_trailing_dot_ignored() -> None:
    resolver = make_resolver()

    with pytest.raises(UnsafeURL, match="loopback"):
        check_url("http://LocalHost./", OutboundPolicy(), resolve=resolver)

    assert resolver.lookups == [("localhost", 80)]


def test_public_addresses_approved() -> None:
    resolver = make_resolver()

    approved = check_url("https://public.example/v1", OutboundPolicy(), resolve=resolver)

    assert approved == [PUBLIC_IPV4, PUBLIC_IPV6]
    assert resolver.lookups == [("public.example", 443)]


def test_public_literals_approved() -> None:
    resolver = make_resolver()

    assert check_url(f"http://{PUBLIC_IPV4}:8080/", OutboundPolicy(), resolver) == [PUBLIC_IPV4]
    assert check_url(f"https://[{PUBLIC_IPV6}]/", OutboundPolicy(), resolver) == [PUBLIC_IPV6]
    assert resolver.lookups == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://public.example/file",
        "file:///etc/passwd",
        "gopher://public.example/",
        "ws://public.example/",
        "public.example/v1",
    ],
)
def test_scheme_other_than_http_rejected(url: str) -> None:
    resolver = make_resolver()

    with pytest.raises(UnsafeURL, match="scheme"):
        check_url(url, OutboundPolicy(), resolve=resolver)

    assert resolver.lookups == []


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pass@public.example/",
        "https://user@public.example/",
        "http://:pw@public.example/",
    ],
)
def test_credentials_in_url_rejected(url: str) -> None:
    resolver = make_resolver()

    with pytest.raises(UnsafeURL, match="user name or password"):
        check_url(url, OutboundPolicy(), resolve=resolver)

    assert resolver.lookups == []


def test_missing_host_rejected() -> None:
    with pytest.raises(UnsafeURL):
        check_url("http:///v1/chat/completions", OutboundPolicy(), resolve=make_resolver())


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("unknown.example", "could not be resolved"),
        ("nothing.example", "resolved to no addresses"),
        ("garbage.example", "invalid address"),
    ],
)
def test_unresolvable_host_rejected(host: str, message: str) -> None:
    with pytest.raises(UnsafeURL, match=re.escape(message)):
        check_url(f"http://{host}/", OutboundPolicy(), resolve=make_resolver())


@pytest.mark.parametrize("host", ["127.0.0.1.1", "0x100000000", "1.2.3.456", "example.123"])
def test_invalid_numeric_host_rejected(host: str) -> None:
    resolver = make_resolver()

    # httpx already rejects some of these as invalid URLs; check_url rejects the rest.
    with pytest.raises(UnsafeURL, match=r"neither a valid IPv4 address|Invalid IPv4 address"):
        check_url(f"http://{host}/", OutboundPolicy(), resolve=resolver)

    assert resolver.lookups == []


def test_allowlisted_loopback_address_approved() -> None:
    policy = OutboundPolicy(allowlist=("127.0.0.1/32",))

    assert check_url("http://127.0.0.1:8001/v1", policy, make_resolver()) == ["127.0.0.1"]
    assert check_url("http://loopback.example:8001/", policy, make_resolver()) == ["127.0.0.1"]
    assert check_url("http://[::ffff:127.0.0.1]:8001/", policy, make_resolver()) == [
        "::ffff:7f00:1"
    ]
    with pytest.raises(UnsafeURL, match=re.escape("host 10.0.0.1 is a private address")):
        check_url("http://10.0.0.1:8001/", policy, make_resolver())
    with pytest.raises(UnsafeURL, match=re.escape("127.0.0.2")):
        check_url("http://127.0.0.2:8001/", policy, make_resolver())
    # localhost also resolves to ::1, which the IPv4 entry does not cover.
    with pytest.raises(UnsafeURL, match="::1, a loopback address"):
        check_url("http://localhost:8001/", policy, make_resolver())


def test_allowlisted_network_approved() -> None:
    policy = OutboundPolicy(allowlist=("10.1.0.0/16",))

    assert check_url("http://10.1.255.7/", policy, make_resolver()) == ["10.1.255.7"]
    with pytest.raises(UnsafeURL):
        check_url("http://10.2.0.1/", policy, make_resolver())


def test_allowlisted_host_name_approved() -> None:
    policy = OutboundPolicy(allowlist=("Models.Internal.",))

    assert check_url("http://models.internal/v1", policy, make_resolver()) == ["10.1.2.3"]
    with pytest.raises(UnsafeURL):
        check_url("http://internal.example/", policy, make_resolver())
    with pytest.raises(UnsafeURL):
        check_url("http://10.1.2.3/", policy, make_resolver())


def test_metadata_address_needs_exact_entry() -> None:
    broad = OutboundPolicy(allowlist=("169.254.0.0/16", "metadata.example"))
    exact = OutboundPolicy(allowlist=("169.254.169.254/32",))

    with pytest.raises(UnsafeURL, match="cloud metadata"):
        check_url("http://169.254.169.254/", broad, make_resolver())
    with pytest.raises(UnsafeURL, match="cloud metadata"):
        check_url("http://metadata.example/", broad, make_resolver())
    assert check_url("http://169.254.1.1/", broad, make_resolver()) == ["169.254.1.1"]
    assert check_url("http://169.254.169.254/", exact, make_resolver()) == ["169.254.169.254"]
    nat64 = OutboundPolicy(allowlist=("64:ff9b::/96",))
    with pytest.raises(
        UnsafeURL, match=re.escape("NAT64 form of 169.254.169.254, a cloud metadata")
    ):
        check_url("http://[64:ff9b::a9fe:a9fe]/", nat64, make_resolver())


def test_policy_from_setting_parses_entries() -> None:
    policy = OutboundPolicy.from_setting(
        " 127.0.0.1/32, models.internal,, 10.1.0.0/16 ,fd00::/8", timeout_seconds=5.0
    )

    assert policy.allowlist == ("127.0.0.1/32", "models.internal", "10.1.0.0/16", "fd00::/8")
    assert policy.timeout_seconds == 5.0
    assert OutboundPolicy.from_setting("").allowlist == ()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("10.0.0.1/8", "host bits"),
        ("*.internal", "wildcards are not supported"),
        ("bad host!", "expected a CIDR network"),
        ("300.1.2.3", "invalid"),
    ],
)
def test_policy_rejects_invalid_entry(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        OutboundPolicy.from_setting(entry)


def test_policy_rejects_non_positive_limits() -> None:
    with pytest.raises(ValueError, match="max_response_bytes"):
        OutboundPolicy(max_response_bytes=0)
    with pytest.raises(ValueError, match="timeout_seconds"):
        OutboundPolicy(timeout_seconds=0)


def test_resolve_host_returns_numeric_address() -> None:
    # A numeric host needs no DNS query, so this sends nothing.
    assert resolve_host("127.0.0.1", 80) == ["127.0.0.1"]
