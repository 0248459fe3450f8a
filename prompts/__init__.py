"""Prompt templates as package data, rendered strictly: a missing variable is an error."""

from __future__ import annotations

import functools
import string
from importlib import resources

from runtime.errors import ShunterError


class PromptError(ShunterError):
    """A template was asked for a variable nobody supplied, or does not exist."""


@functools.cache
def load(name: str, /) -> str:
    try:
        return resources.files("prompts").joinpath(f"{name}.md").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PromptError(f"There is no prompt template named {name!r} in prompts/.") from None


def render_text(template: str, template_name: str = "<inline>", /, **values: object) -> str:
    """Fill `$name` / `${name}` placeholders; `$$` is a literal dollar sign."""
    try:
        return string.Template(template).substitute({k: str(v) for k, v in values.items()})
    except KeyError as e:
        raise PromptError(
            f"Prompt {template_name!r} needs the variable {e.args[0]!r}, which was not given."
        ) from None
    except ValueError as e:
        raise PromptError(f"Prompt {template_name!r} has a malformed placeholder ({e}).") from None


def render(template_name: str, /, **values: object) -> str:
    return render_text(load(template_name), template_name, **values)
