"""Tools: declaration, registry, file / shell / research tools, path scope, policy, sandbox."""

from tools.base import Tool, tool
from tools.registry import ToolRegistry, aexecute_tool, default_registry, execute_tool, register_tool

__all__ = [
    "Tool",
    "ToolRegistry",
    "aexecute_tool",
    "default_registry",
    "execute_tool",
    "register_tool",
    "tool",
]
