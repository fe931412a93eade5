"""backends (filled in by later work)."""

__all__: list[str] = []
