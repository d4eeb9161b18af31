"""Market data feeds behind the MarketFeed protocol (simulator, IB, replay) and the snapshot recorder."""
