"""The simulated world: clock, Heston index, Cboe-like listing and quotes, paper exchange."""
