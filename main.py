"""Heston Workstation entry point: `python main.py [command] [options]` (see `--help`)."""
import sys

from workstation.cli import main

if __name__ == "__main__":
    sys.exit(main())
