"""Shared fixtures. No test may reach a real provider or the internet: the environment's
OpenAI settings are removed and sockets may connect only to loopback addresses."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from runtime.config import Settings, ToolSettings
from runtime.context import RunContext, approve_all

pytest_plugins = ["tests.server_fixtures"]

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check(address) -> None:
    if isinstance(address, tuple) and address:
        host = address[0]
        try:
            ip = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            raise OSError(
                f"test guard: refusing to connect to {host!r} (tests may only reach loopback)"
            ) from None
        if not ip.is_loopback:
            raise OSError(f"test guard: refusing to connect to {host} (tests may only reach loopback)")


def _guarded_connect(self, address):
    _check(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    _check(address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch, tmp_path_factory):
    """A developer's own ~/.config/shunter/config.toml must not change what tests see."""
    monkeypatch.delenv("SHUNTER_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg")))


@pytest.fixture(autouse=True)
def _no_real_providers(monkeypatch):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SHUNTER_MODEL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)


@pytest.fixture
def workspace(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest.fixture
def ctx(workspace):
    """A run context over a temp workspace, side effects approved, no sandbox requirement."""
    settings = Settings(tools=ToolSettings(sandbox="auto"))
    return RunContext.create(workspace, settings, approve=approve_all)
