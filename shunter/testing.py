"""Testing helpers for Shunter users: scripted models and the OpenAI-compatible test server."""

from runtime.testing import FunctionModel, ScriptedModel, calls, text, tool_call
from runtime.testserver import (
    Drop,
    Fault,
    MalformedToolCall,
    NoUsage,
    Paced,
    Slow,
    TestServer,
    Text,
    ToolCalls,
)

__all__ = [
    "Drop",
    "Fault",
    "FunctionModel",
    "MalformedToolCall",
    "NoUsage",
    "Paced",
    "ScriptedModel",
    "Slow",
    "TestServer",
    "Text",
    "ToolCalls",
    "calls",
    "text",
    "tool_call",
]
