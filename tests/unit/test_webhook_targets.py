"""The webhook allow-list: its entries, the check at creation, the check of resolved addresses."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

from hq import errors
from hq.server.services.webhook_targets import (
    address_allowed,
    check_url,
    parse_allow,
    parse_target,
)
from hq.server.settings import ServerSettings

ALLOW = parse_allow(
    "127.0.0.1:9000, 10.1.0.0/16, [::1]:9000, hooks.example.com:443, ci.example.org"
)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/x",
        "https://10.1.2.3/x",
        "http://10.1.255.1:8080/",
        "http://[::1]:9000/x",
        "https://hooks.example.com/x",
        "https://HOOKS.example.com:443/x",
        "http://ci.example.org:1234/x",
    ],
)
def test_listed_urls_are_allowed(url: str) -> None:
    assert check_url(url, ALLOW).host == parse_target(url).host


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9001/x",  # the port is not listed
        "http://127.0.0.1/x",
        "http://10.2.0.1/x",
        "http://[::1]:80/x",
        "http://hooks.example.com/x",  # port 80, not 443
        "https://evil.example.com/x",
        "http://localhost:9000/x",  # a name is not its address
    ],
)
def test_unlisted_urls_are_refused_naming_the_url_and_the_setting(url: str) -> None:
    with pytest.raises(errors.ValidationFailed) as caught:
        check_url(url, ALLOW)
    assert url in caught.value.message and "HQ_WEBHOOK_ALLOW" in caught.value.message


def test_an_empty_allow_list_disables_webhooks() -> None:
    with pytest.raises(errors.ValidationFailed, match="disabled"):
        check_url("http://127.0.0.1:9000/x", ())


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("file:///etc/passwd", "http or https"),
        ("gopher://127.0.0.1:9000/", "http or https"),
        ("http:///path", "no host"),
        ("http://a:b@127.0.0.1:9000/", "no user or password"),
        ("http://127.0.0.1:99999/", "(?i)port"),
    ],
)
def test_malformed_urls_are_refused(url: str, says: str) -> None:
    with pytest.raises(errors.ValidationFailed, match=says):
        check_url(url, ALLOW)


def test_a_name_reaches_only_public_addresses_unless_the_address_is_listed() -> None:
    by_name = parse_target("https://hooks.example.com/x")
    ip = ipaddress.ip_address
    assert address_allowed(by_name, ip("93.184.216.34"), ALLOW)
    for internal in ("127.0.0.1", "10.9.9.9", "192.168.1.1", "169.254.169.254", "::1", "fd00::1"):
        assert not address_allowed(by_name, ip(internal), ALLOW), internal
    assert address_allowed(by_name, ip("10.1.0.5"), ALLOW)  # listed by network, any port
    dropped = parse_allow("10.1.0.0/16")  # the name is no longer listed: nothing by name
    assert not address_allowed(by_name, ip("93.184.216.34"), dropped)


@pytest.mark.parametrize("entry", ["a b", "[::1", "host:0", "host:x", "-bad-.com", "10.0.0.0/33"])
def test_a_bad_allow_list_stops_the_server_naming_the_entry(entry: str) -> None:
    with pytest.raises(ValidationError, match="HQ_WEBHOOK_ALLOW"):
        ServerSettings(webhook_allow=f"127.0.0.1:9000,{entry}")
