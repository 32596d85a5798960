"""The one place we talk to the LLM: builds the chat model from the run context and turns API failures into clear errors.

Retries happen once, in the provider SDK (exponential backoff, honours Retry-After); LangGraph node retries are not
used for LLM calls, so the two never multiply. A model written `provider:name` (e.g. `anthropic:claude-sonnet-4-5`)
goes to that provider's LangChain integration; any other name goes to an OpenAI-compatible endpoint via ChatOpenAI.
"""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from langchain_core.language_models import BaseChatModel
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


@dataclass(frozen=True)
class Provider:
    """A LangChain integration, as `langchain.chat_models.init_chat_model` knows it (same prefixes)."""

    module: str
    class_name: str
    package: str  # what `pip install` needs
    key_env: str | None  # the provider's own API-key variable; None: no key (local server, cloud credentials)


# The prefixes of init_chat_model, dispatched here so the heavy `langchain` package is not needed.
PROVIDERS: dict[str, Provider] = {
    "openai": Provider("langchain_openai", "ChatOpenAI", "langchain-openai", "OPENAI_API_KEY"),
    "azure_openai": Provider("langchain_openai", "AzureChatOpenAI", "langchain-openai", "AZURE_OPENAI_API_KEY"),
    "anthropic": Provider("langchain_anthropic", "ChatAnthropic", "langchain-anthropic", "ANTHROPIC_API_KEY"),
    "google_genai": Provider(
        "langchain_google_genai", "ChatGoogleGenerativeAI", "langchain-google-genai", "GOOGLE_API_KEY"
    ),
    "google_vertexai": Provider("langchain_google_vertexai", "ChatVertexAI", "langchain-google-vertexai", None),
    "bedrock_converse": Provider("langchain_aws", "ChatBedrockConverse", "langchain-aws", None),
    "mistralai": Provider("langchain_mistralai", "ChatMistralAI", "langchain-mistralai", "MISTRAL_API_KEY"),
    "groq": Provider("langchain_groq", "ChatGroq", "langchain-groq", "GROQ_API_KEY"),
    "ollama": Provider("langchain_ollama", "ChatOllama", "langchain-ollama", None),
    "deepseek": Provider("langchain_deepseek", "ChatDeepSeek", "langchain-deepseek", "DEEPSEEK_API_KEY"),
    "xai": Provider("langchain_xai", "ChatXAI", "langchain-xai", "XAI_API_KEY"),
    "fireworks": Provider("langchain_fireworks", "ChatFireworks", "langchain-fireworks", "FIREWORKS_API_KEY"),
    "together": Provider("langchain_together", "ChatTogether", "langchain-together", "TOGETHER_API_KEY"),
}

# Exception class names shared by the OpenAI and Anthropic SDKs (and most that copy them), most specific first.
_TIMEOUT, _CONNECTION = "APITimeoutError", "APIConnectionError"
# The first pause before asking again after a garbage answer; it doubles per retry (as the SDK's own backoff does).
GARBAGE_BACKOFF_S = 0.5


def split_model(model: str) -> tuple[str | None, str]:
    """`anthropic:claude-x` -> ("anthropic", "claude-x"). Only known prefixes count: `qwen3-coder:30b` (an Ollama
    tag at an OpenAI-compatible endpoint) stays a plain model name."""
    prefix, sep, name = model.partition(":")
    if sep and prefix in PROVIDERS and name:
        return prefix, name
    return None, model


def api_key(settings: LLMSettings) -> str:
    key_env = key_variable(settings)
    key = os.environ.get(key_env, "") if key_env else ""
    if key_env and not key:
        raise LLMUnavailable(
            f"no API key: set {key_env} (for a local server without auth any value works, e.g. "
            f"{key_env}=local). KernelAgent never falls back to canned kernels."
        )
    return key


def key_variable(settings: LLMSettings) -> str | None:
    """The variable holding the key: the run's (default OPENAI_API_KEY), or the provider's own for a prefixed model
    left on the default (ANTHROPIC_API_KEY for anthropic:...)."""
    provider, _ = split_model(settings.model)
    if provider in (None, "openai") or settings.api_key_env != "OPENAI_API_KEY":
        return settings.api_key_env
    return PROVIDERS[provider].key_env


def preflight(settings: LLMSettings) -> None:
    """Fail before any work on what no retry can fix: a missing provider package or API key."""
    provider, _ = split_model(settings.model)
    if provider is not None:
        _provider_class(provider)
    api_key(settings)


def _provider_class(provider: str) -> type[BaseChatModel]:
    spec = PROVIDERS[provider]
    try:
        module = importlib.import_module(spec.module)
    except ImportError as err:
        raise LLMUnavailable(
            f"model prefix {provider!r} needs the {spec.package} package: pip install {spec.package}"
        ) from err
    return getattr(module, spec.class_name)


def chat_model(settings: LLMSettings) -> BaseChatModel:
    """The chat model for these settings (cached: one HTTP connection pool per endpoint and key)."""
    return _chat_model(settings, api_key(settings))


@lru_cache(maxsize=16)
def _chat_model(settings: LLMSettings, key: str) -> BaseChatModel:
    provider, name = split_model(settings.model)
    if provider in (None, "openai"):
        return _openai_model(settings, name, key)
    return _provider_model(provider, settings, name, key)


def _openai_model(settings: LLMSettings, name: str, key: str) -> ChatOpenAI:
    extra = {}
    if settings.reasoning_effort:
        extra["reasoning_effort"] = settings.reasoning_effort
    if settings.temperature is not None:
        extra["temperature"] = settings.temperature
    return ChatOpenAI(
        model=name,
        base_url=settings.base_url,
        api_key=key,
        # ChatOpenAI's default timeout is None = wait forever; a hung endpoint must not hang the run.
        timeout=settings.request_timeout_s,
        max_retries=settings.max_retries,
        stream_usage=True,
        **extra,
    )


def _provider_model(provider: str, settings: LLMSettings, name: str, key: str) -> BaseChatModel:
    cls = _provider_class(provider)
    wanted: dict[str, Any] = {
        "model": name,
        "timeout": settings.request_timeout_s,
        "max_retries": settings.max_retries,
        "temperature": settings.temperature,
        "reasoning_effort": settings.reasoning_effort,
        "api_key": key or None,
        # OPENAI_BASE_URL names an OpenAI-compatible server, never another provider's API.
        "base_url": settings.base_url if settings.base_url != os.environ.get("OPENAI_BASE_URL") else None,
    }
    accepted = _field_names(cls)
    return cls(**{k: v for k, v in wanted.items() if v is not None and k in accepted})


def _field_names(cls: type) -> set[str]:
    """Constructor names a pydantic chat model accepts: fields and their aliases. Integrations differ (ChatOllama
    has no timeout), and an unknown keyword would be an error or a silently forwarded API parameter."""
    names = set()
    for field_name, info in getattr(cls, "model_fields", {}).items():
        names.add(field_name)
        for alias in (info.alias, info.validation_alias):
            if isinstance(alias, str):
                names.add(alias)
            elif alias is not None:
                names.update(c for c in getattr(alias, "choices", []) if isinstance(c, str))
    return names


def ask(settings: LLMSettings, system: str, user: str, meta: dict[str, str | int]) -> LLMReply:
    """One chat request. `meta` (task, seed, round, problem) travels as a header for logs and scripted endpoints."""
    llm = chat_model(settings)
    extra = {}
    if isinstance(llm, ChatOpenAI):  # other providers' SDKs have no extra_headers on every call
        extra["extra_headers"] = {"X-KernelAgent-Meta": ";".join(f"{k}={v}" for k, v in meta.items())}
    message = _invoke_retrying_garbage(settings, llm, [SystemMessage(system), HumanMessage(user)], extra)
    usage = message.usage_metadata or {}
    return LLMReply(_text_of(message.content), usage.get("input_tokens", 0), usage.get("output_tokens", 0))


def _invoke_retrying_garbage(settings: LLMSettings, llm: BaseChatModel, messages: list, extra: dict) -> Any:
    """llm.invoke, retried with backoff when the endpoint answers 200 with something that is not a chat completion
    (a proxy's HTML page, malformed JSON, an event stream): the SDK retries only HTTP errors, and such an answer is
    as transient as a 502. After the retries it is LLMUnavailable (exit 3, resumable), never an internal error."""
    for attempt in range(settings.max_retries + 1):
        try:
            return llm.invoke(messages, **extra)
        except Exception as err:
            if not _garbage_answer(err):
                mapped = _unavailable(settings, err)
                if mapped is None:
                    raise
                raise mapped from err
            if attempt == settings.max_retries:
                raise LLMUnavailable(
                    f"the LLM endpoint {endpoint(settings)} answered with something that is not a chat completion "
                    f"({type(err).__name__}: {_short(err)[:160]}), {attempt + 1} time(s); check --base-url (a proxy "
                    f"page?) and the server, then resume the run"
                ) from err
            time.sleep(min(GARBAGE_BACKOFF_S * 2**attempt, 8.0))
    raise AssertionError("unreachable: the loop returns or raises")


def _garbage_answer(err: Exception) -> bool:
    """Errors the SDK and LangChain raise while reading a 200 answer that is not a chat completion."""
    if type(err).__name__ == "APIResponseValidationError" or isinstance(err, (ValueError, LookupError)):
        return True  # JSONDecodeError and pydantic's ValidationError are ValueErrors
    # LangChain's "Received response with null value for 'choices'"; other TypeErrors are bugs (a wrong keyword).
    return isinstance(err, TypeError) and "response" in str(err)


def _unavailable(settings: LLMSettings, err: Exception) -> LLMUnavailable | None:
    """The clear error for an SDK failure. Matched by class name so that the OpenAI SDK and the SDKs modelled on it
    (Anthropic, ...) map alike; None for an exception that is not an API failure (a bug: let it surface)."""
    names = {cls.__name__ for cls in type(err).__mro__}
    where, retries = endpoint(settings), settings.max_retries
    if "AuthenticationError" in names or "PermissionDeniedError" in names:
        return LLMUnavailable(f"the endpoint rejected the API key in {key_variable(settings)}: {_short(err)}")
    if "NotFoundError" in names:
        return LLMUnavailable(
            f"model {settings.model!r} not found at {where} (check --model, and that --base-url ends in /v1): "
            f"{_short(err)}"
        )
    if "RateLimitError" in names:
        return LLMUnavailable(f"rate limited by {where} after {retries} retries; resume the run later")
    if _TIMEOUT in names:
        return LLMUnavailable(
            f"no answer from {where} within {settings.request_timeout_s:g}s (after {retries} retries); "
            f"raise --request-timeout or check the server"
        )
    if _CONNECTION in names:
        return LLMUnavailable(f"cannot reach the LLM endpoint {where}: {_short(err)}")
    if "APIStatusError" in names:
        status = getattr(err, "status_code", "?")
        return LLMUnavailable(f"the LLM endpoint {where} answered HTTP {status} (after {retries} retries): {_short(err)}")
    return None


def _text_of(content: str | list) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


def endpoint(settings: LLMSettings) -> str:
    """Where requests go, for messages: the base URL, OpenAI's, or the provider's name."""
    provider, _ = split_model(settings.model)
    if provider not in (None, "openai"):
        return f"{provider} ({settings.base_url})" if settings.base_url else provider
    return settings.base_url or "https://api.openai.com/v1"


def _short(err: Exception) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0][:300]
