"""The combo ticket's parts: the structure picker, the legs table, the package summary, the payoff plot and the
live checks view. `ui.dialogs.combo_ticket.ComboTicket` composes them."""
