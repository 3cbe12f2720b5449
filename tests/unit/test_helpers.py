"""The test harness itself, where it can be checked without starting anything."""

from __future__ import annotations

import pytest

from tests.helpers import programs, proxies


def test_missing_program_skips_locally_and_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(programs.shutil, "which", lambda *args, **kwargs: None)
    monkeypatch.setattr(programs, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install nginx-light"):
        programs.need_program("nginx", "nginx-light")
    monkeypatch.setattr(programs, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="haproxy is not installed"):
        programs.need_program("haproxy", "haproxy")


def test_deploy_files_keep_the_placeholders_the_fixtures_replace() -> None:
    for name in ("nginx.conf", "haproxy-tcp.cfg", "haproxy-http.cfg"):
        text = proxies.deploy_file(name, {proxies.UPSTREAM: "127.0.0.1:1"})
        assert "127.0.0.1:1" in text
    with pytest.raises(AssertionError, match="exactly once"):
        proxies.deploy_file("nginx.conf", {"no such line": ""})
