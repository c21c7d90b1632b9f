"""``python -m assign``: the same command line as the ``assign`` console script."""
from assign.cli import main

if __name__ == "__main__":
    main()
