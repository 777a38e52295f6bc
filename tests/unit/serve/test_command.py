"""`layerscan serve`'s options: the upstream and listen addresses, errors as one line."""
from __future__ import annotations

import pytest

from scanner.serve.command import ServeError, listen_of, upstream_of


def test_the_upstream_url_gives_the_endpoint_and_its_trust(tmp_path):
    plain = upstream_of("http://127.0.0.1:5000", None, ())
    assert (plain.url, plain.endpoint.host, plain.endpoint.scheme) == ("http://127.0.0.1:5000", "127.0.0.1:5000", "http")
    unverified = upstream_of("https://reg:5000/", None, ("reg:5000",))
    assert unverified.endpoint.verify is False and unverified.ssl is False
    assert upstream_of("https://reg", None, ()).endpoint.verify is True


@pytest.mark.parametrize("url", ["reg:5000", "ftp://reg", "https://reg/v2/", "http://"])
def test_a_bad_upstream_is_one_error(url):
    with pytest.raises(ServeError, match="expected http"):
        upstream_of(url, None, ())


def test_listen_addresses():
    assert listen_of("127.0.0.1:5080") == ("127.0.0.1", 5080)
    assert listen_of("[::1]:5080") == ("::1", 5080)
    for bad in ("5080", "host:", "host:99999"):
        with pytest.raises(ServeError, match="expected HOST:PORT"):
            listen_of(bad)


def test_serve_without_its_extra_says_what_to_install(monkeypatch, capsys):
    import builtins

    from scanner.cli import main

    real = builtins.__import__

    def no_aiohttp(name, *args, **kwargs):
        if name == "scanner.serve.server" or name.startswith("aiohttp"):
            raise ImportError(name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_aiohttp)
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--upstream", "http://127.0.0.1:5000"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("layerscan: error: serve needs aiohttp") and "layerscan[serve]" in err
