"""Heston Workstation: SPX/XSP options trading workstation built around a Heston model of the surface."""

__version__ = "0.1.0"
