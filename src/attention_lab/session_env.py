"""The active Kedro env, as the running ``KedroSession`` was created with it.

The variant namespaces depend on the env, and every way into the project creates a session:
``kedro run --env``, ``kedro viz run --env``, ``kedro ipython --env`` (and ``%reload_kedro
--env``), the dashboard's ``--env``, and ``KEDRO_ENV`` for any of them, which
``KedroSession.create`` reads itself. The session hands its env and runtime parameters to its
store, which ``settings.SESSION_STORE_CLASS`` makes this one. Hooks would not do: kedro-viz
runs without project hooks unless asked.

A session's ``--conf-source`` (configuration outside the project's ``conf/``) is read from
the CLI's arguments, which the session also hands to its store; a session created in code
with ``conf_source`` records it with :func:`record_conf_source`.

Limits: Kedro builds the pipelines once per ``bootstrap_project``/``configure_project``, so a
second session with another env in the same process needs ``%reload_kedro`` (which does that)
rather than a bare ``KedroSession.create``.
"""

from __future__ import annotations

from typing import Any

from kedro.framework.session.store import BaseSessionStore

_ACTIVE: dict[str, Any] = {}


class EnvRecordingStore(BaseSessionStore):
    """Kedro's ephemeral session store that also remembers the newest session's env."""

    def __init__(self, path: str, session_id: str):
        _ACTIVE.clear()  # a new session starts from the default env
        super().__init__(path, session_id)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        if key in ("env", "runtime_params"):
            _ACTIVE[key] = value
        if key == "cli" and (value.get("params") or {}).get("conf_source"):
            _ACTIVE["conf_source"] = value["params"]["conf_source"]


def record_conf_source(conf_source: str | None) -> None:
    """Say that the newest session, created in code, reads its configuration from here."""
    if conf_source:
        _ACTIVE["conf_source"] = str(conf_source)


def active_conf_source() -> str | None:
    """The newest session's ``--conf-source``; ``None``: the project's ``conf/``."""
    return _ACTIVE.get("conf_source")


def active_env() -> str | None:
    """The env of the newest session; ``None`` means Kedro's default (base + local)."""
    return _ACTIVE.get("env")


def active_runtime_params() -> dict[str, Any]:
    """``--params`` of the newest session (they may change the study's variants)."""
    return dict(_ACTIVE.get("runtime_params") or {})
