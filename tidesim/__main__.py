"""``python -m tidesim``: the same command line as ``tidesim``."""

from .cli import main

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(main())
