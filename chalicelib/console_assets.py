"""The web console's files (chalicelib/console/), served by the app at /console.

Plain HTML, CSS and JavaScript: nothing to build. The page itself is public; every API call it
makes is signed in the browser with the access key the user signs in with.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

CONSOLE_DIR = Path(__file__).parent / "console"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# The console loads only its own files and talks only to its own origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' blob: data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class Asset:
    body: str
    content_type: str


@cache
def asset(name: str) -> Asset | None:
    """A console file by name (`index.html`, `app.js`, ...), or None: only the files that are
    there, never a path outside the console directory."""
    names = {p.name: p for p in CONSOLE_DIR.iterdir() if p.suffix in _TYPES}
    path = names.get(name)
    if path is None:
        return None
    return Asset(path.read_text(encoding="utf-8"), _TYPES[path.suffix])
