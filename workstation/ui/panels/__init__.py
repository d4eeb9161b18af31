"""Dockable panels: each displays one part of the engine's state and calls back through the bridge."""
