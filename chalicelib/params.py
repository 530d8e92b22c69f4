"""Query parameters as the handlers receive them (each name with all its values), and the two
checks every ListX operation makes of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from chalicelib.errors import invalid_parameter

Params = Mapping[str, Sequence[str]]


def only_params(params: Params, allowed: Sequence[str]) -> None:
    """CTS.0001 for a parameter the operation does not take."""
    for name in params:
        if name not in allowed:
            raise invalid_parameter(name[:64], f"is not a parameter here ({', '.join(allowed)})")


def one_param(params: Params, name: str) -> str | None:
    """The parameter's single value (None when absent or empty); CTS.0001 when repeated."""
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise invalid_parameter(name, "is given more than once")
    return values[0] or None
