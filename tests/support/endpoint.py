"""Requests to Dash's callback endpoint as the browser makes them, for tests and benchmarks."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

from dash import Dash
from dash._utils import split_callback_id

ENDPOINT = "/_dash-update-component"


def callback_body(app: Dash, output: str, values: dict, changed: list[str] | None = None) -> dict:
    """The JSON body that runs the callback registered for ``output`` (a key of
    ``app.callback_map``, e.g. ``"compare-graph.figure"``).

    ``values`` maps ``"component.property"`` to a value for each of the callback's inputs and
    states (a missing one is a KeyError); ``changed`` lists the inputs that triggered it
    (default: the first input).
    """
    spec = app.callback_map[output]

    def values_of(items: list[dict]) -> list[dict]:
        return [{**i, "value": values[f"{i['id']}.{i['property']}"]} for i in items]

    inputs = values_of(spec["inputs"])
    return {
        "output": output,
        "outputs": split_callback_id(output),
        "inputs": inputs,
        "state": values_of(spec["state"]),
        "changedPropIds": changed or [f"{inputs[0]['id']}.{inputs[0]['property']}"],
    }


def control_inputs(selection) -> dict:
    """A :class:`~dashboard.selection.Selection` as the controls' ``"component.value"`` inputs,
    the part of :func:`callback_body`'s ``values`` that every view callback takes."""
    from dashboard.selection import CONTROLS

    return {
        f"{control}.value": value
        for control, value in zip(CONTROLS, selection.control_values(), strict=True)
    }


def ask(url: str, body: dict, timeout: float = 60) -> dict:
    """POST ``body`` to the server at ``url``'s callback endpoint; its JSON answer."""
    request = urllib.request.Request(
        url.rstrip("/") + ENDPOINT,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.load(answer)


def wait_until_answers(url: str, proc: subprocess.Popen, seconds: float) -> bool:
    """Poll ``url`` until the server ``proc`` answers (True), exits or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return True
        except OSError:
            time.sleep(0.3)
    return False


def response_value(answer: dict, component: str, prop: str):
    """One output's new value in a callback's JSON answer (KeyError when it was not updated)."""
    return answer["response"][component][prop]
