"""Paper or live: the configured mode, the keys, the URL and the account must agree.

Checked by :class:`~workbench.brokers.alpaca.AlpacaBroker` when it is built, before any
order can be sent; any disagreement is a ``ConfigError`` naming it (never the key):

1. ``mode`` is ``"paper"`` or ``"live"``. ``mode="live"`` also needs the setting
   ``alpaca.paper = false`` (``WORKBENCH__ALPACA__PAPER=false``): going live takes both
   the explicit mode and the configuration, so one stray flag cannot do it.
2. **Keys**: Alpaca's paper API keys start with ``PK``, live keys with ``AK``. A key with
   the other mode's prefix is refused; a key with neither prefix (OAuth, a test fake's
   key) says nothing and the account decides.
3. **URL**: an ``alpaca.markets`` trading URL must be ``paper-api.alpaca.markets`` for
   paper and ``api.alpaca.markets`` for live. Any other host (the loopback fake, a proxy)
   says nothing and the account decides.
4. **Account** (``GET /v2/account``, a read): Alpaca's paper account numbers start with
   ``PA``; a live account's do not. The account must say the configured mode.
"""

from __future__ import annotations

from urllib.parse import urlparse

from workbench.errors import ConfigError

__all__ = ["LIVE_URL", "PAPER_URL", "check_account", "check_setup"]

PAPER_URL = "https://paper-api.alpaca.markets"
LIVE_URL = "https://api.alpaca.markets"
_HOSTS = {"paper": "paper-api.alpaca.markets", "live": "api.alpaca.markets"}
_KEY_PREFIX = {"PK": "paper", "AK": "live"}


def check_setup(mode: str, settings_paper: bool, api_key: str, url: str) -> None:
    """Rules 1-3 of the module doc; nothing is sent."""
    if mode not in ("paper", "live"):
        raise ConfigError(f"Alpaca mode must be 'paper' or 'live', got {mode!r}")
    if mode == "live" and settings_paper:
        raise ConfigError("Alpaca mode 'live' refused: the setting alpaca.paper is true; set "
                          "alpaca.paper = false (WORKBENCH__ALPACA__PAPER=false) as well to "
                          "trade live")
    key_mode = _KEY_PREFIX.get(api_key[:2].upper())
    if key_mode is not None and key_mode != mode:
        raise ConfigError(f"Alpaca mode {mode!r} refused: ALPACA_API_KEY is a {key_mode} key "
                          f"(it starts with {api_key[:2].upper()!r}); use {mode} keys or "
                          f"mode {key_mode!r}")
    host = (urlparse(url).hostname or "").lower()
    if host.endswith("alpaca.markets") and host != _HOSTS[mode]:
        raise ConfigError(f"Alpaca mode {mode!r} refused: the trading URL {url} is not the "
                          f"{mode} API ({_HOSTS[mode]})")


def check_account(mode: str, account_number: str) -> None:
    """Rule 4: the account the API returned is a ``mode`` account."""
    account_mode = "paper" if str(account_number).upper().startswith("PA") else "live"
    if account_mode != mode:
        raise ConfigError(f"Alpaca mode {mode!r} refused: the API answered with a "
                          f"{account_mode} account (account number {account_number}); "
                          f"nothing was sent")
