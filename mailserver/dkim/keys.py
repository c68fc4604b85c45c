"""Where the server's DKIM keys live, and which selector signs (two-selector rotation).

The keys are files in the directory of ``[dkim] key_file`` (``dkim/`` by default), written by
:func:`mailserver.dkim.signing.generate_keys`: ``<selector>.rsa.pem`` and
``<selector>.ed25519.pem``. The rotation state is ``dkim/rotation.json``
(``{"current": "mss1", "next": "mss2"}``); without it the configured ``[dkim] selector`` signs.

Rotation (``mssante dkim``): ``prepare NAME`` generates the next selector's keys (publish its
TXT records, shown by ``mssante dkim show``), ``rotate`` makes it current once DNS has it; the
old records can be removed a few days later (messages in transit are verified with them).
"""

from __future__ import annotations

import json
from pathlib import Path

from mailserver.config import Config
from mailserver.dkim.signing import DkimError, KeyRotation, generate_keys, load_keys
from mailserver.files import atomic_write

__all__ = ["keys_dir", "load_rotation", "prepare_next", "promote_next"]

_STATE = "rotation.json"


def keys_dir(config: Config) -> Path:
    """The directory holding the DKIM key files."""
    return config.path(config.dkim.key_file).parent


def _state(config: Config) -> dict[str, str]:
    path = keys_dir(config) / _STATE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"current": config.dkim.selector}
    except ValueError as exc:
        raise DkimError(f"{path} is not valid JSON") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("current"), str):
        raise DkimError(f"{path}: malformed rotation state")
    return {k: v for k, v in raw.items() if isinstance(v, str) and v}


def _save(config: Config, state: dict[str, str]) -> None:
    atomic_write(keys_dir(config) / _STATE, (json.dumps(state) + "\n").encode(), mode=0o644)


def load_rotation(config: Config) -> KeyRotation:
    """The current (signing) and next (pre-published) selector keys."""
    state = _state(config)
    directory = keys_dir(config)
    current = load_keys(directory, state["current"])
    nxt = load_keys(directory, state["next"]) if state.get("next") else None
    return KeyRotation(current, nxt)


def prepare_next(config: Config, selector: str) -> KeyRotation:
    """Generate keys for ``selector`` and record it as the next selector.

    Raises:
        DkimError: invalid selector name, or a next selector is already prepared.
    """
    if not selector or not all(c.isalnum() or c == "-" for c in selector):
        raise DkimError("a selector is letters, digits and hyphens")
    state = _state(config)
    if state.get("next"):
        raise DkimError(f"selector {state['next']} is already prepared; rotate first")
    if selector == state["current"]:
        raise DkimError("that selector is the current one")
    generate_keys(keys_dir(config), selector)
    state["next"] = selector
    _save(config, state)
    return load_rotation(config)


def promote_next(config: Config) -> KeyRotation:
    """Make the prepared selector current (``KeyRotation.rotate``)."""
    rotation = load_rotation(config).rotate()
    _save(config, {"current": rotation.current.selector, "previous":
                   _state(config)["current"]})
    return rotation
