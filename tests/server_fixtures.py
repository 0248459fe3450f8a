"""Pytest fixtures for the scripted OpenAI-compatible server (load as a plugin from conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import openai
import pytest

from runtime.testserver import TestServer

TEST_API_KEY = "sk-test-not-a-real-key-123456"
"""A key shaped like a real one, so tests can check it is sent and never logged."""


@pytest.fixture
def test_server() -> Iterator[TestServer]:
    with TestServer() as server:
        yield server


@pytest.fixture
async def openai_client(test_server: TestServer) -> AsyncIterator[openai.AsyncOpenAI]:
    # SDK retries off: the project has one retry layer of its own, and tests want each fault raw.
    client = openai.AsyncOpenAI(base_url=test_server.base_url, api_key=TEST_API_KEY, max_retries=0)
    async with client:
        yield client
