"""Views a volatility trader works from, computed outside the window: skew and term metrics, their history,
realised against implied volatility, the chain board's rows. Pure numpy (no Qt, no engine)."""
