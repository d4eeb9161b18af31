"""Heston Workstation entry point: `python main.py [command] [options]` (see `--help`)."""
import gc
import sys

# Start-up allocates about a million objects that live as long as the process (modules, classes, Qt wrappers, the
# window); Python's automatic collection would scan them ~250 times on the way (0.1-0.3 s of the first window).
# The command hands collection back once it is up (`workstation.cli.main`; the window collects on its own timer).
gc.disable()

from workstation.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(gc_held=True))
