"""Modal dialogs: what-if before an order, settings, the live-trading guard."""
