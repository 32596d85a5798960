"""Effective run settings and where each came from: CLI options > environment (then ./.env) > ./kernelagent.toml
(or [tool.kernelagent] in ./pyproject.toml) > defaults. Keys are RunContext's field names."""

from __future__ import annotations

import dataclasses
import difflib
import io
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from kernelagent.errors import ConfigError
from kernelagent.graph.context import RunContext

try:  # Python 3.11+; tomli is the same parser for 3.10
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_FILE = "kernelagent.toml"
DOTENV_FILE = ".env"
ENV_PREFIX = "KERNELAGENT_"
# Extra variable names a field also answers to, after KERNELAGENT_<FIELD>: the OpenAI SDK's own, and earlier names.
ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "base_url": ("OPENAI_BASE_URL",),
    "price_in_per_m": ("KERNELAGENT_PRICE_IN",),
    "price_out_per_m": ("KERNELAGENT_PRICE_OUT",),
}
# Shown by `config` with their state only, never their value (a key) or with credentials masked (a proxy URL).
SECRET_VARIABLES = ("LANGSMITH_API_KEY",)
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")
SHOWN_VARIABLES = ("LANGSMITH_TRACING", "LANGSMITH_ENDPOINT", "LANGSMITH_PROJECT")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}

# Names apply_dotenv() put into os.environ, so that `config` still reports them as coming from .env.
_from_dotenv: dict[str, str] = {}


@dataclass(frozen=True)
class Setting:
    """One effective value; `source` is cli, env, .env, kernelagent.toml, pyproject or default; `origin` says which
    variable or file."""

    value: object
    source: str
    origin: str = ""


@dataclass(frozen=True)
class Config:
    settings: dict[str, Setting]

    def context(self) -> RunContext:
        """The RunContext these values make (validated: an invalid value is a UsageError, exit 2)."""
        return RunContext(**{name: setting.value for name, setting in self.settings.items()})

    def values(self) -> dict[str, object]:
        return {name: setting.value for name, setting in self.settings.items()}


def env_names(field: str) -> tuple[str, ...]:
    """Variables that set `field`, first match wins: KERNELAGENT_<FIELD>, then its aliases."""
    return (ENV_PREFIX + field.upper(), *ENV_ALIASES.get(field, ()))


def resolve(cli: Mapping[str, object] | None = None, cwd: Path | None = None,
            environ: Mapping[str, str] | None = None) -> Config:
    """Every RunContext field's effective value. `cli` holds the options given (None values count as not given)."""
    cwd = Path.cwd() if cwd is None else cwd
    environ = os.environ if environ is None else environ
    dotenv = read_dotenv(cwd / DOTENV_FILE)
    real_env = {k: v for k, v in environ.items() if _from_dotenv.get(k) != v}
    file_values, file_source, file_path = read_config_file(cwd)
    hints = typing.get_type_hints(RunContext)
    settings = {}
    for field in dataclasses.fields(RunContext):
        name = field.name
        if cli and cli.get(name) is not None:
            settings[name] = Setting(cli[name], "cli")
        elif (found := _from_env(name, real_env, dotenv)) is not None:
            source, variable, raw = found
            settings[name] = Setting(convert(name, raw, hints[name], f"{source} {variable}"), source, variable)
        elif name in file_values:
            value = convert(name, file_values[name], hints[name], f"{file_path} key {name!r}")
            settings[name] = Setting(value, file_source, str(file_path))
        else:
            settings[name] = Setting(_default(field), "default")
    return Config(settings)


def _from_env(name: str, real_env: Mapping[str, str], dotenv: Mapping[str, str]) -> tuple[str, str, str] | None:
    """(source, variable, raw value); the real environment beats .env, as python-dotenv does. Empty means unset."""
    for source, variables in (("env", real_env), (".env", dotenv)):
        for variable in env_names(name):
            if variables.get(variable, "").strip():
                return source, variable, variables[variable].strip()
    return None


def _default(field: dataclasses.Field) -> object:
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory()  # type: ignore[misc] - every RunContext field has one or the other


# --- files -----------------------------------------------------------------------------------------------------------


def read_config_file(cwd: Path) -> tuple[dict, str, Path | None]:
    """(values, source name, path) from ./kernelagent.toml, else [tool.kernelagent] of ./pyproject.toml, else none.
    An unknown key is an error: a typo must not silently fall back to a default."""
    own, pyproject = cwd / CONFIG_FILE, cwd / "pyproject.toml"
    if own.is_file():
        values, source, path = _load_toml(own), CONFIG_FILE, own
    elif pyproject.is_file():
        values, source, path = _load_toml(pyproject).get("tool", {}).get("kernelagent", {}), "pyproject", pyproject
    else:
        return {}, "default", None
    check_keys(values, f"{path}" + ("" if source == CONFIG_FILE else " [tool.kernelagent]"))
    return values, source, path


def _load_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err


def check_keys(values: Mapping[str, object], where: str) -> None:
    known = [f.name for f in dataclasses.fields(RunContext)]
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
            raise ConfigError(f"{where}: unknown setting {key!r}{hint}")


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file ({} when there is none), through python-dotenv when it is installed."""
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path} is not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}): "
                          f"save it as UTF-8") from err
    try:
        from dotenv import dotenv_values
    except ImportError:
        return parse_dotenv(text)
    # No ${VAR} interpolation: the fallback parser has none, and both must read a file alike.
    return {k: v for k, v in dotenv_values(stream=io.StringIO(text), interpolate=False).items() if v is not None}


def parse_dotenv(text: str) -> dict[str, str]:
    """KEY=VALUE per line; blank lines and # comments skipped; `export ` allowed; a value may be quoted, and an
    unquoted one ends at ` #`."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        values[key.strip()] = _dotenv_value(value.strip())
    return values


def _dotenv_value(value: str) -> str:
    if value[:1] in ("'", '"'):
        end = value.find(value[0], 1)
        inner = value[1:end] if end > 0 else value[1:]
        return inner.replace("\\n", "\n") if value[0] == '"' else inner
    return value.split(" #", 1)[0].strip()


def apply_dotenv(cwd: Path | None = None) -> dict[str, str]:
    """Put ./.env's variables into os.environ where not already set (the API key, proxies, LangSmith: the SDKs read
    them from the environment). Returns what the file holds."""
    values = read_dotenv((Path.cwd() if cwd is None else cwd) / DOTENV_FILE)
    for key, value in values.items():
        if key not in os.environ:
            os.environ[key] = value
            _from_dotenv[key] = value
    return values


# --- values ----------------------------------------------------------------------------------------------------------


def convert(name: str, raw: object, hint: object, where: str) -> object:
    """A value from a variable (always a string) or a TOML file (typed) as the field's type, or a clear error."""
    options = _non_none(hint)
    if raw is None or (isinstance(raw, str) and raw.lower() == "none" and len(options) < len(_args(hint))):
        return None
    errors = []
    for option in options:
        try:
            return _as(option, raw)
        except (TypeError, ValueError) as err:
            errors.append(str(err))
    raise ConfigError(f"{where}: invalid value {raw!r} for {name}: {'; '.join(errors)}")


def _args(hint: object) -> tuple:
    return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)


def _non_none(hint: object) -> tuple:
    return tuple(a for a in _args(hint) if a is not type(None))


def _as(kind: object, raw: object) -> object:
    origin = typing.get_origin(kind)
    if origin is typing.Literal:
        allowed = typing.get_args(kind)
        if raw not in allowed:
            raise ValueError(f"expected one of {', '.join(map(str, allowed))}")
        return raw
    if origin is dict:
        return _as_sizes(raw)
    if kind is bool:
        return _as_bool(raw)
    if kind in (int, float):
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise ValueError(f"expected {kind.__name__}")
        if kind is int and isinstance(raw, float):
            raise ValueError("expected an integer")
        return kind(raw)
    if kind is str:
        if not isinstance(raw, str):
            raise ValueError("expected a string")
        return raw
    raise TypeError(f"unsupported type {kind}")


def _as_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ValueError("expected true or false")


def _as_sizes(raw: object) -> dict[str, int]:
    """A TOML table {N = 4096}, or `N=4096,M=128` from a variable."""
    if isinstance(raw, str):
        pairs = [item.partition("=") for item in raw.split(",") if item.strip()]
        if any(not sep for _, sep, _ in pairs):
            raise ValueError("expected NAME=INT,NAME=INT")
        raw = {name.strip(): value.strip() for name, _, value in pairs}
    if not isinstance(raw, dict):
        raise ValueError("expected a table of NAME = INT")
    return {str(name): _as(int, value) for name, value in raw.items()}  # type: ignore[misc]


# --- display ---------------------------------------------------------------------------------------------------------


def describe(config: Config, environ: Mapping[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(name, value, source) rows for `python cli.py config`. Secrets show as set/not set, never their value."""
    environ = os.environ if environ is None else environ
    rows = [(name, _show(s.value), s.source + (f" ({s.origin})" if s.origin else "")) for name, s in
            config.settings.items()]
    key_env = str(config.settings["api_key_env"].value)
    rows.append((f"api key ({key_env})", *_state(key_env, environ)))
    rows += [(name, *_state(name, environ)) for name in SECRET_VARIABLES]
    for name in PROXY_VARIABLES + SHOWN_VARIABLES:
        value = environ.get(name) or environ.get(name.lower())
        if value:
            shown = mask_credentials(value) if name.endswith("_PROXY") else value
            rows.append((name, shown, ".env" if _from_dotenv.get(name) == value else "env"))
    return rows


def _state(variable: str, environ: Mapping[str, str]) -> tuple[str, str]:
    value = environ.get(variable)
    if not value:
        return "not set", ""
    return "set", ".env" if _from_dotenv.get(variable) == value else "env"


def _show(value: object) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, str) and "://" in value:
        return mask_credentials(value)  # a checkpoint or proxy URL may carry a password
    return "-" if value is None else str(value)


def mask_credentials(url: str) -> str:
    """http://user:secret@proxy:3128 -> http://user:***@proxy:3128 (a NO_PROXY list comes back unchanged)."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
