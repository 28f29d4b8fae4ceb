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
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from workbench import paths
from workbench.errors import ConfigError
from workbench.secrets import SECRET_ENV_VARS, redact

__all__ = [
    "AlpacaSettings",
    "Credentials",
    "DataSettings",
    "GateSettings",
    "LogSettings",
    "MonitorSettings",
    "RiskSettings",
    "Settings",
    "load_settings",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class DataSettings(BaseModel):
    model_config = _FROZEN
    spike_band: float = Field(0.5, gt=0, description="max |close/reference - 1| before a bar is a spike")
    default_timeframe: str = "1Min"


class LogSettings(BaseModel):
    model_config = _FROZEN
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    format: Literal["json", "console"] = "json"
    # a session's own log file, runs/<id>/logs/session.jsonl (JSON lines, rotated)
    run_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    run_max_bytes: int = Field(10 * 2**20, ge=4096, description="rotate the run's log past this")
    run_backups: int = Field(5, ge=1, description="rotated files kept per run")


class MonitorSettings(BaseModel):
    """Alerts and metrics of a session (``[monitor]``; :mod:`workbench.monitor`). Alert
    channels are apprise URLs (``json://host/path``, ``tgram://token/chat``, ...); a URL
    can hold a token, so they are secrets: give them by environment
    (``WORKBENCH__MONITOR__ALERT_URLS='["tgram://..."]'``), never shown by the settings."""

    model_config = _FROZEN
    alert_urls: tuple[SecretStr, ...] = ()
    alert_level: Literal["info", "warning", "error", "critical"] = Field(
        "info", description="alerts below this severity are journaled, not delivered")
    dedupe_s: float = Field(
        900.0, gt=0, description="the same alert again within this many seconds of session "
                                 "time is journaled and counted, not delivered again")
    max_alerts_per_minute: int = Field(
        20, ge=1, description="past this, alerts of a minute are journaled and summed up "
                              "in one alert")
    alert_queue: int = Field(1000, ge=1, description="alerts waiting for delivery at most")
    alert_timeout_s: float = Field(5.0, gt=0, description="a channel's connect/read timeout")
    drain_s: float = Field(5.0, ge=0, description="at the session's end, wait at most this "
                                                 "long for the alerts still queued")
    metrics: bool = Field(True, description="serve Prometheus metrics during a session")
    metrics_port: int = Field(0, ge=0, le=65535, description="0: a free port (127.0.0.1)")


class AlpacaSettings(BaseModel):
    model_config = _FROZEN
    paper: bool = True
    feed: Literal["iex", "sip"] = "iex"
    trading_url: str | None = None
    data_url: str | None = None
    request_timeout_s: float = Field(10.0, gt=0)


# -- risk ---------------------------------------------------------------------------------
# Every threshold of the kill-switch table and the pre-trade caps; defaults are the table of
# ARCHITECTURE.md. Fractions and money are Decimal (converted once, here, from whatever the
# TOML or environment gave); durations are seconds with pandas.Timedelta accessors for the
# code that compares times. Comparisons are strict, as in the table: a daily loss of
# exactly 3% does not trigger, 3.01% does. ``from workbench.risk import RiskSettings``.

_FRACTION = {"gt": 0, "lt": 1}


class RiskSettings(BaseModel):
    """Thresholds of the risk gateway (``[risk]`` in ``workbench.toml``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # -- daily loss, against start-of-day equity --------------------------------------
    daily_loss_reduce: Decimal = Field(
        Decimal("0.03"), **_FRACTION,
        description="daily loss fraction above which only reducing orders pass (REDUCING)")
    daily_loss_halt: Decimal = Field(
        Decimal("0.05"), **_FRACTION,
        description="daily loss fraction above which every position is flattened and "
                    "trading HALTED for the day")
    # -- one position -----------------------------------------------------------------
    position_loss_exit: Decimal = Field(
        Decimal("0.05"), **_FRACTION,
        description="unrealized loss of one position, as a fraction of its average price, "
                    "that forces its exit")
    # -- order rate -------------------------------------------------------------------
    max_orders: int = Field(
        50, ge=1, description="more orders than this within order_window_s: HALTED until "
                              "an operator resumes")
    order_window_s: float = Field(300.0, gt=0)
    # -- connectivity and data freshness ----------------------------------------------
    disconnect_grace_s: float = Field(
        30.0, gt=0, description="feed or broker disconnected longer than this: no new "
                                "entries, alert")
    stale_bar_intervals: float = Field(
        2.0, gt=0, description="last bar older than this many bar intervals: no new "
                               "entries, alert")
    # -- decision latency -------------------------------------------------------------
    latency_budget_ms: float = Field(
        250.0, gt=0, description="bar arrival to orders sent; over it: alert")
    latency_breaches_to_block: int = Field(
        3, ge=1, description="this many consecutive decisions over budget block new entries")
    # -- unexpected exceptions --------------------------------------------------------
    max_exceptions: int = Field(
        3, ge=0, description="more than this within exception_window_s: HALTED")
    exception_window_s: float = Field(60.0, gt=0)
    # -- pre-trade caps (USD) ---------------------------------------------------------
    # Not set (file, environment or keyword): a session derives each of these three from
    # its sizing at its start (2x what it can reach), workbench.risk.caps; these values
    # are then only what `workbench config` shows. Set: kept, and said when the sizing
    # already reaches them.
    max_order_notional: Decimal = Field(
        Decimal(100_000), gt=0, description="per order that adds exposure")
    max_symbol_exposure: Decimal = Field(
        Decimal(100_000), gt=0, description="worst-case gross, per symbol, open orders included")
    max_total_exposure: Decimal = Field(
        Decimal(500_000), gt=0, description="worst-case gross, all symbols, open orders included")
    max_gross_leverage: Decimal = Field(
        Decimal(1), gt=0,
        description="total gross exposure may not exceed this multiple of current equity")
    price_band: Decimal = Field(
        Decimal("0.05"), **_FRACTION,
        description="max |limit or stop price / last trade - 1|")

    @model_validator(mode="after")
    def _ordered(self) -> RiskSettings:
        if self.daily_loss_halt <= self.daily_loss_reduce:
            raise ValueError(
                f"daily_loss_halt ({self.daily_loss_halt}) must be above daily_loss_reduce "
                f"({self.daily_loss_reduce})")
        return self

    # -- durations as Timedelta -------------------------------------------------------
    @property
    def order_window(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=self.order_window_s)

    @property
    def disconnect_grace(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=self.disconnect_grace_s)

    @property
    def exception_window(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=self.exception_window_s)


class GateSettings(BaseModel):
    """What a notebook must show to be promoted (``[gates]`` in ``workbench.toml``)."""

    model_config = _FROZEN
    # -- to paper -----------------------------------------------------------------------
    min_oos_sharpe: float = Field(
        0.0, description="walk-forward out-of-sample Sharpe of the book: at least this")
    max_oos_drawdown: float = Field(
        0.25, gt=0, le=1, description="walk-forward out-of-sample max drawdown: at most this")
    max_parity_mismatches: int = Field(
        0, ge=0, description="engine vs vectorized signals: at most this many mismatches")
    # -- to live ------------------------------------------------------------------------
    min_paper_sessions: int = Field(
        5, ge=1, description="paper sessions of this notebook hash that ended well")
    max_drift: float = Field(
        0.01, gt=0, description="|session P&L - replayed backtest P&L| / capital, per session")
    warn_drift: float = Field(
        0.005, gt=0, description="a paper session's drift (as max_drift) from which it warns")
    halt_drift: float = Field(
        0.03, gt=0, description="a paper session's drift (as max_drift) that halts its "
        "deployment (above max_drift, which blocks promotion to live)")
    canary_fraction: float = Field(
        0.1, gt=0, le=1, description="live starts with this fraction of the capital")


class Credentials(BaseModel):
    """Broker credentials, read from the environment only."""

    model_config = _FROZEN
    api_key: SecretStr | None = None
    secret_key: SecretStr | None = None

    @classmethod
    def from_env(cls) -> Credentials:
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
    gates: GateSettings = GateSettings()
    monitor: MonitorSettings = MonitorSettings()
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
        if "alert_urls" in raw.get("monitor", {}):
            raise ConfigError(f"{path}: [monitor] alert_urls can hold tokens: give them by "
                              "environment (WORKBENCH__MONITOR__ALERT_URLS), not in a file")
    if any(k.upper().startswith("WORKBENCH__CREDENTIALS") for k in os.environ):
        raise ConfigError(f"credentials come only from {', '.join(SECRET_ENV_VARS)}")
    try:
        return Settings(**overrides)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(redact(f"invalid setting {where}: {first['msg']}")) from None
