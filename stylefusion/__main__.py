"""`python -m stylefusion`: the library CLI."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
