"""The local stack: moto as the embedded AWS, the REST API on Chalice's local server, and a driver
that runs the app's non-HTTP functions (queues, streams, schedules) as Lambda would.

`python -m chalicelib.local` (what `make run` runs) starts it; `stack.py` composes it, `driver.py`
delivers events, `events.py` builds them in Lambda's own shapes, `schedules.py` reads schedule
expressions and `state.py` is the `local.json` the CLI finds the stack through. Only this package
and `app.py` import Chalice: the stack hosts the app, the rest of `chalicelib` never needs to.
This module imports nothing, so the CLI can read the state file without loading Chalice or moto.
"""

from __future__ import annotations
