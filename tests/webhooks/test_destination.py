"""The SSRF guard: URLs reaching this server, metadata or private networks are refused."""

from __future__ import annotations

import pytest

from fidelite.webhooks import UnsafeURL, check_url


def public(host: str, port: int) -> list[str]:
    return ["93.184.216.34"]


def resolves_to(*addresses: str):  # type: ignore[no-untyped-def]
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8000/hook", "host 127.0.0.1 is loopback"),
        ("http://[::1]/hook", "host ::1 is loopback"),
        ("http://169.254.169.254/latest/meta-data", "is a cloud metadata address"),
        ("http://[fe80::1]/x", "is link-local"),
        ("http://10.1.2.3/hook", "is in a private range"),
        ("http://192.168.0.10/hook", "is in a private range"),
        ("http://172.16.5.4/hook", "is in a private range"),
        ("http://100.64.0.1/hook", "is in a private range"),
        ("http://0.0.0.0/hook", "is not a unicast host address"),
        ("http://[::ffff:127.0.0.1]/hook", "is loopback"),
        ("file:///etc/passwd", "scheme 'file' is not allowed (only http and https)"),
        ("gopher://example.com/", "scheme 'gopher' is not allowed"),
        ("https:///nohost", "names no host"),
        ("https://user:pw@example.com/", "must not carry credentials"),
        ("", "is empty"),
    ],
)
def test_unsafe_urls_are_refused_naming_the_field_and_why(url: str, reason: str) -> None:
    with pytest.raises(UnsafeURL) as caught:
        check_url(url, resolve=public)
    assert caught.value.field == "url"
    assert caught.value.code == "unsafe_url"
    assert caught.value.message.startswith("url: ")
    assert reason in caught.value.message


def test_a_name_is_refused_when_any_address_it_resolves_to_is_unsafe() -> None:
    with pytest.raises(
        UnsafeURL, match=r"host hooks\.example\.com \(10\.0\.0\.7\) is in a private"
    ):
        check_url("https://hooks.example.com/x", resolve=resolves_to("93.184.216.34", "10.0.0.7"))
    with pytest.raises(UnsafeURL, match=r"localhost \(127\.0\.0\.1\) is loopback"):
        check_url("http://localhost:9000/", resolve=resolves_to("127.0.0.1"))


def test_unresolvable_hosts_are_refused() -> None:
    def fails(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(UnsafeURL, match=r"host 'nowhere\.invalid' does not resolve"):
        check_url("https://nowhere.invalid/", resolve=fails)


def test_public_addresses_pass_and_the_dev_flag_allows_loopback_and_private() -> None:
    assert check_url(" https://hooks.example.com/x ", resolve=public) == (
        "https://hooks.example.com/x"
    )
    for url in ("http://127.0.0.1:8000/h", "http://[::1]:8000/h", "http://10.1.2.3/h"):
        assert check_url(url, allow_private=True) == url


def test_metadata_and_link_local_stay_refused_even_for_development() -> None:
    for url in ("http://169.254.169.254/", "http://[fd00:ec2::254]/", "http://[fe80::2]/"):
        with pytest.raises(UnsafeURL):
            check_url(url, allow_private=True)


def test_pinning_keeps_the_name_for_host_and_tls() -> None:
    from fidelite.webhooks.destination import pin

    https = pin("https://hooks.example.com/in?x=1", resolve=resolves_to("2606:2800:220:1::1"))
    assert https.connect_url == "https://[2606:2800:220:1::1]:443/in?x=1"
    assert (https.host_header, https.tls_name) == ("hooks.example.com", "hooks.example.com")
    plain = pin("http://hooks.example.com:8080", resolve=public)
    assert (plain.connect_url, plain.host_header, plain.tls_name) == (
        "http://93.184.216.34:8080/", "hooks.example.com:8080", None,
    )  # fmt: skip
