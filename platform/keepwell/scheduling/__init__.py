"""Visits: what members ask for (visit requests), and — as scheduling grows — the visits planned,
assigned and done."""
