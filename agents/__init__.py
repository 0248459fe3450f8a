"""Specialist agents: declaration, the tool-calling loop, the registry and plugins."""

from agents.base import Agent
from agents.loop import AgentResult, run_agent
from agents.registry import AgentRegistry, default_agents, register_agent

__all__ = ["Agent", "AgentRegistry", "AgentResult", "default_agents", "register_agent", "run_agent"]
