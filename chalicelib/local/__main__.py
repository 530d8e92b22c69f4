"""`python -m chalicelib.local`: start the local stack (see stack.py)."""

from __future__ import annotations

from chalicelib.local.stack import main

if __name__ == "__main__":
    raise SystemExit(main())
