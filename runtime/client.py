"""The model client over the official openai SDK, streaming or not: Chat Completions here,
the Responses API in runtime/responses.py; errors are mapped here for both."""

from __future__ import annotations

import email.utils
import functools
import json
import re
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

import openai

from runtime import telemetry
from runtime.config import OPENAI_DEFAULT_BASE_URL, ModelSettings
from runtime.counted_usage import count_usage
from runtime.errors import ConfigError, ModelError, TransientModelError
from runtime.events import Redactor
from runtime.model import ModelRequest, ModelResponse, ToolCall, public_message

_TRANSIENT_STATUS = {408, 409, 429}
APIS = ("chat", "responses")
_CONTEXT_CODES = {"context_length_exceeded", "exceed_context_size_error", "string_above_max_length"}
_CONTEXT_WORDS = re.compile(
    r"context (length|window|size)|maximum context|too many tokens|prompt is too long", re.IGNORECASE
)


@functools.cache
def _tls() -> ssl.SSLContext:
    # The SDK's own client builds a TLS context, loading the CA bundle, for every client it
    # makes: about 16 ms, even for an http:// endpoint. The DBOS engine makes a client for
    # every subtask, so the process makes the context once and every client shares it.
    import httpx2

    return httpx2.create_ssl_context()


def async_openai(base_url: str, api_key: str, timeout_s: float) -> openai.AsyncOpenAI:
    """The SDK's client with its retries off (runtime.calls is the one retry layer) and the
    SDK's own HTTP defaults (limits, redirects) but the process's TLS context."""
    http = openai.DefaultAsyncHttpxClient(base_url=base_url, timeout=timeout_s, verify=_tls())
    return openai.AsyncOpenAI(
        base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout_s, http_client=http
    )


def resolve_api(api: str, base_url: str | None) -> str:
    """'auto' is Responses on OpenAI's own endpoint, Chat Completions elsewhere: most local
    servers speak only Chat Completions."""
    if api == "auto":
        own = base_url is None or base_url.rstrip("/") == OPENAI_DEFAULT_BASE_URL
        return "responses" if own else "chat"
    if api not in APIS:
        raise ConfigError(f"Unknown model API {api!r}; use 'chat', 'responses' or 'auto'.")
    return api


class OpenAIModel:
    """One model on one OpenAI-compatible endpoint. Retries are off in the SDK: the one retry
    layer is runtime.calls, which sees every attempt."""

    def __init__(
        self,
        name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        api: str = "chat",
    ):
        self.name = name
        self.api = resolve_api(api, base_url)
        """The API a request speaks unless it names one (ModelRequest.api)."""
        self.base_url = base_url or OPENAI_DEFAULT_BASE_URL
        self.shown_url = re.sub(r"//[^/@]*@", "//", self.base_url)  # never show a user:password@ part
        url = urlsplit(self.base_url)
        self._span_attrs = {
            "gen_ai.provider.name": "openai",  # the API's flavour; the server may host any model
            "gen_ai.system": "openai",  # the name before the conventions' 1.37, still read by backends
            "server.address": url.hostname,
            "server.port": url.port or (443 if url.scheme == "https" else 80),
        }
        if not api_key:
            if base_url is None or base_url.rstrip("/") == OPENAI_DEFAULT_BASE_URL:
                raise ConfigError(
                    "No API key: set OPENAI_API_KEY, or set OPENAI_BASE_URL to a local OpenAI-compatible "
                    "server (for example http://localhost:11434/v1 for Ollama), or try `shunter demo`."
                )
            api_key = "not-needed"  # local servers ignore it, but the SDK requires a value
        self._redact = Redactor([api_key])
        self._client = async_openai(self.base_url, api_key, timeout_s)

    @classmethod
    def from_settings(cls, settings: ModelSettings, name: str | None = None) -> OpenAIModel:
        key = settings.api_key.get_secret_value() if settings.api_key else None
        return cls(
            name or settings.name,
            base_url=settings.base_url,
            api_key=key,
            timeout_s=settings.timeout_s,
            api=settings.api,
        )

    async def close(self) -> None:
        await self._client.close()

    async def complete(self, request: ModelRequest) -> ModelResponse:
        api = resolve_api(request.api, self.base_url) if request.api else self.api
        telemetry.annotate({**self._span_attrs, "shunter.api": api})
        try:
            if api == "responses":
                from runtime import responses  # the second API, kept in its own module

                return await responses.complete(self._client, self.name, request)
            return await self._chat(request)
        except openai.APITimeoutError as e:
            raise TransientModelError(f"The model request to {self.shown_url} timed out.") from e
        except openai.APIConnectionError as e:
            raise TransientModelError(
                f"The connection to the model server at {self.shown_url} failed ({e.__cause__ or e})."
            ) from e
        except openai.APIStatusError as e:
            raise self._status_error(e) from e

    async def _chat(self, request: ModelRequest) -> ModelResponse:
        # Private keys (a Responses answer's items, say) are ours, not the server's.
        messages = [public_message(m) for m in request.messages]
        kwargs: dict[str, Any] = {"model": self.name, "messages": messages}
        if request.tools:
            kwargs["tools"] = request.tools
            kwargs["parallel_tool_calls"] = request.parallel_tool_calls
        if request.response_format:
            kwargs["response_format"] = request.response_format
        if request.max_output_tokens:
            kwargs["max_completion_tokens"] = request.max_output_tokens
        if request.stream:
            return await self._stream(request, kwargs)
        return self._parse(await self._client.chat.completions.create(**kwargs), request)

    def _status_error(self, e: openai.APIStatusError) -> ModelError:
        status = e.status_code
        detail = self._redact(_error_message(e))  # a server may echo the key in its error
        if status == 429 and _error_code(e) == "insufficient_quota":
            # Retrying cannot refill a quota: this one is permanent.
            return ModelError(
                f"The account behind the API key has no quota left (429 insufficient_quota): {detail}"
            )
        if status in _TRANSIENT_STATUS or status >= 500:
            return TransientModelError(
                f"The model server answered {status}: {detail}",
                status=status,
                retry_after=retry_after(e.response.headers),
            )
        if status in (400, 413, 422) and _too_long(e, detail):
            # Retrying resends the same conversation: say what makes it shorter instead.
            return ModelError(
                f"The conversation no longer fits the context window of model {self.name!r} ({detail}). "
                "Split the subtask, give it less to read (tools.max_result_chars caps each tool result), "
                "or use a model with a longer context.",
                status=status,
            )
        if status == 401:
            return ModelError(
                f"The model server at {self.shown_url} rejected the API key (401); check OPENAI_API_KEY."
            )
        if status == 404:
            return ModelError(
                f"Model {self.name!r} was not found at {self.shown_url} (404: {detail}); set SHUNTER_MODEL to a model the server serves."
            )
        return ModelError(f"The model server refused the request ({status}): {detail}", status=status)

    def _parse(self, completion: Any, request: ModelRequest) -> ModelResponse:
        choice = completion.choices[0] if completion.choices else None
        msg = choice.message if choice else None
        calls = (
            [ToolCall(c.id, c.function.name, c.function.arguments or "") for c in (msg.tool_calls or [])]
            if msg
            else []
        )
        resp = ModelResponse(
            text=(msg.content or "") if msg else "",
            tool_calls=calls,
            model=completion.model or self.name,
            finish_reason=choice.finish_reason if choice else None,
        )
        telemetry.annotate({"gen_ai.response.id": completion.id})
        _apply_usage(resp, completion.usage, request)
        return resp

    async def _stream(self, request: ModelRequest, kwargs: dict[str, Any]) -> ModelResponse:
        stream = await self._client.chat.completions.create(
            **kwargs, stream=True, stream_options={"include_usage": True}
        )
        text: list[str] = []
        calls = _CallAssembler()
        resp = ModelResponse(model=self.name)
        usage = None
        async with stream:
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = chunk.usage
                if chunk.model:
                    resp.model = chunk.model
                    telemetry.annotate({"gen_ai.response.id": chunk.id})
                for choice in chunk.choices or []:
                    delta = choice.delta
                    if delta and delta.content:
                        text.append(delta.content)
                        if request.on_text:
                            request.on_text(delta.content)
                    for tc in (delta.tool_calls or []) if delta else []:
                        fn = tc.function
                        calls.add(tc.index, tc.id, fn.name if fn else None, fn.arguments if fn else None)
                    if choice.finish_reason:
                        resp.finish_reason = choice.finish_reason
        resp.text = "".join(text)
        resp.tool_calls = calls.result()
        _apply_usage(resp, usage, request)
        return resp


class _CallAssembler:
    """Tool-call deltas to whole calls. OpenAI sends each call under its own index, with the id
    and name once; some servers (Ollama among them) send every call whole under index 0 or with
    no index, so a new id, or a new name after complete arguments, also starts a new call."""

    def __init__(self) -> None:
        self.slots: list[dict[str, str]] = []
        self.by_index: dict[int, int] = {}

    def add(self, index: int | None, call_id: str | None, name: str | None, arguments: str | None) -> None:
        key = -1 if index is None else index
        pos = self.by_index.get(key)
        slot = self.slots[pos] if pos is not None else None
        fresh = (
            slot is None
            or (bool(call_id) and bool(slot["id"]) and call_id != slot["id"])
            or (bool(name) and bool(slot["name"]) and not call_id and _complete_json(slot["arguments"]))
        )
        if fresh:
            slot = {"id": "", "name": "", "arguments": ""}
            self.slots.append(slot)
            self.by_index[key] = len(self.slots) - 1
        assert slot is not None
        if call_id:
            slot["id"] = call_id
        if name:
            slot["name"] = name if slot["name"] == name else slot["name"] + name
        if arguments:
            slot["arguments"] += arguments

    def result(self) -> list[ToolCall]:
        return [ToolCall(s["id"] or f"call_{i}", s["name"], s["arguments"]) for i, s in enumerate(self.slots)]


def _complete_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _apply_usage(resp: ModelResponse, usage: Any, request: ModelRequest) -> None:
    if usage is not None and getattr(usage, "prompt_tokens", None) is not None:
        resp.input_tokens = usage.prompt_tokens or 0
        resp.output_tokens = usage.completion_tokens or 0
        details = getattr(usage, "prompt_tokens_details", None)
        resp.cached_input_tokens = (getattr(details, "cached_tokens", 0) or 0) if details else 0
        out_details = getattr(usage, "completion_tokens_details", None)
        resp.reasoning_tokens = (getattr(out_details, "reasoning_tokens", 0) or 0) if out_details else 0
        return
    count_usage(resp, request)


def _error_message(e: openai.APIStatusError) -> str:
    body = e.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if body.get("detail"):  # FastAPI-style servers (vLLM and others)
            return str(body["detail"])[:500]
    return str(e.message)


def _error_code(e: openai.APIStatusError) -> str | None:
    body = e.body
    err = body.get("error", body) if isinstance(body, dict) else None
    return err.get("code") if isinstance(err, dict) else None


def _too_long(e: openai.APIStatusError, detail: str) -> bool:
    """OpenAI (both APIs) says context_length_exceeded; vLLM, llama.cpp and others say it in words."""
    body = e.body
    err = body.get("error", body) if isinstance(body, dict) else None
    kind = err.get("type") if isinstance(err, dict) else None
    return _error_code(e) in _CONTEXT_CODES or kind in _CONTEXT_CODES or bool(_CONTEXT_WORDS.search(detail))


def retry_after(headers: Any) -> float | None:
    """Seconds the server asked us to wait: retry-after-ms, or retry-after (seconds or a date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(parsed.timestamp() - time.time(), 0.0) if parsed else None
