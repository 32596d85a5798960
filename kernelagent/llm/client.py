"""The one place we talk to the LLM: builds ChatOpenAI from the run context and turns API failures into clear errors.

Retries happen once, in the OpenAI SDK (exponential backoff, honours Retry-After); LangGraph node retries are not
used for LLM calls, so the two never multiply.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import openai
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from kernelagent.errors import LLMUnavailable


@dataclass(frozen=True)
class LLMSettings:
    model: str
    base_url: str | None
    api_key_env: str = "OPENAI_API_KEY"
    reasoning_effort: str | None = None
    temperature: float | None = None
    request_timeout_s: float = 600.0
    max_retries: int = 3


@dataclass(frozen=True)
class LLMReply:
    text: str
    input_tokens: int
    output_tokens: int


def api_key(settings: LLMSettings) -> str:
    key = os.environ.get(settings.api_key_env, "")
    if not key:
        raise LLMUnavailable(
            f"no API key: set {settings.api_key_env} (for a local server without auth any value works, e.g. "
            f"{settings.api_key_env}=local). KernelAgent never falls back to canned kernels."
        )
    return key


@lru_cache(maxsize=16)
def _chat_model(settings: LLMSettings, key: str) -> ChatOpenAI:
    extra = {}
    if settings.reasoning_effort:
        extra["reasoning_effort"] = settings.reasoning_effort
    if settings.temperature is not None:
        extra["temperature"] = settings.temperature
    return ChatOpenAI(
        model=settings.model,
        base_url=settings.base_url,
        api_key=key,
        # ChatOpenAI's default timeout is None = wait forever; a hung endpoint must not hang the run.
        timeout=settings.request_timeout_s,
        max_retries=settings.max_retries,
        stream_usage=True,
        **extra,
    )


def ask(settings: LLMSettings, system: str, user: str, meta: dict[str, str | int]) -> LLMReply:
    """One chat request. `meta` (task, seed, round, problem) travels as a header for logs and scripted endpoints."""
    llm = _chat_model(settings, api_key(settings))
    header = ";".join(f"{k}={v}" for k, v in meta.items())
    try:
        message = llm.invoke(
            [SystemMessage(system), HumanMessage(user)], extra_headers={"X-KernelAgent-Meta": header}
        )
    except openai.AuthenticationError as err:
        raise LLMUnavailable(f"the endpoint rejected the API key in {settings.api_key_env}: {_short(err)}") from err
    except openai.NotFoundError as err:
        raise LLMUnavailable(f"model {settings.model!r} not found at {_endpoint(settings)}: {_short(err)}") from err
    except openai.RateLimitError as err:
        raise LLMUnavailable(
            f"rate limited by {_endpoint(settings)} after {settings.max_retries} retries; resume the run later"
        ) from err
    except openai.APITimeoutError as err:
        raise LLMUnavailable(
            f"no answer from {_endpoint(settings)} within {settings.request_timeout_s:g}s "
            f"(after {settings.max_retries} retries); raise --request-timeout or check the server"
        ) from err
    except openai.APIConnectionError as err:
        raise LLMUnavailable(f"cannot reach the LLM endpoint {_endpoint(settings)}: {_short(err)}") from err
    except openai.APIStatusError as err:
        raise LLMUnavailable(f"the LLM endpoint answered HTTP {err.status_code}: {_short(err)}") from err
    usage = message.usage_metadata or {}
    return LLMReply(_text_of(message.content), usage.get("input_tokens", 0), usage.get("output_tokens", 0))


def _text_of(content: str | list) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


def _endpoint(settings: LLMSettings) -> str:
    return settings.base_url or "https://api.openai.com/v1"


def _short(err: Exception) -> str:
    return str(err).splitlines()[0][:300]
