"""Typed, validated, frozen settings.

Sources, strongest first: keyword arguments, ``WORKBENCH__SECTION__KEY`` environment
variables, the TOML file (``$WORKBENCH_CONFIG``, else ``workbench.toml`` in the workbench
home), then the defaults below. Credentials come only from the environment
(``ALPACA_API_KEY``, ``ALPACA_SECRET_KEY``); a config file that holds one is refused.
Secrets are ``SecretStr``: no repr, str or dump of a settings object shows them.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from workbench import paths
from workbench.errors import ConfigError
from workbench.risk.config import RiskSettings
from workbench.secrets import SECRET_ENV_VARS, redact

__all__ = ["Settings", "DataSettings", "LogSettings", "AlpacaSettings", "Credentials", "load_settings"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class DataSettings(BaseModel):
    model_config = _FROZEN
    spike_band: float = Field(0.5, gt=0, description="max |close/reference - 1| before a bar is a spike")
    default_timeframe: str = "1Min"


class LogSettings(BaseModel):
    model_config = _FROZEN
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    format: Literal["json", "console"] = "json"


class AlpacaSettings(BaseModel):
    model_config = _FROZEN
    paper: bool = True
    feed: Literal["iex", "sip"] = "iex"
    trading_url: str | None = None
    data_url: str | None = None
    request_timeout_s: float = Field(10.0, gt=0)


class Credentials(BaseModel):
    """Broker credentials, read from the environment only."""

    model_config = _FROZEN
    api_key: SecretStr | None = None
    secret_key: SecretStr | None = None

    @classmethod
    def from_env(cls) -> "Credentials":
        key, secret = (os.environ.get(name) or None for name in SECRET_ENV_VARS)
        return cls(api_key=key, secret_key=secret)

    @property
    def present(self) -> bool:
        return self.api_key is not None and self.secret_key is not None


def config_file() -> Path:
    env = os.environ.get("WORKBENCH_CONFIG")
    return Path(env).expanduser() if env else paths.home() / "workbench.toml"


_SECRET_KEYS = {"api_key", "secret_key", "alpaca_api_key", "alpaca_secret_key", "password", "token"}


def _find_secret_keys(table: dict[str, Any], prefix: str = "") -> list[str]:
    found = []
    for key, value in table.items():
        if isinstance(value, dict):
            found += _find_secret_keys(value, f"{prefix}{key}.")
        elif key.lower() in _SECRET_KEYS:
            found.append(prefix + key)
    return found


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WORKBENCH__", env_nested_delimiter="__", frozen=True, extra="forbid"
    )
    data: DataSettings = DataSettings()
    log: LogSettings = LogSettings()
    alpaca: AlpacaSettings = AlpacaSettings()
    risk: RiskSettings = RiskSettings()
    credentials: Credentials = Field(default_factory=Credentials.from_env, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, config_file()))


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning any problem into one clear ``ConfigError``."""
    path = config_file()
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
        if bad := _find_secret_keys(raw):
            raise ConfigError(
                f"{path}: holds credential key(s) {', '.join(bad)}; credentials come only from "
                f"the environment ({', '.join(SECRET_ENV_VARS)})"
            )
        if "credentials" in raw:
            raise ConfigError(f"{path}: [credentials] cannot be set in a file")
    if any(k.upper().startswith("WORKBENCH__CREDENTIALS") for k in os.environ):
        raise ConfigError(f"credentials come only from {', '.join(SECRET_ENV_VARS)}")
    try:
        return Settings(**overrides)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(redact(f"invalid setting {where}: {first['msg']}")) from None
