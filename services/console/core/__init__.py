"""Pure core of the console: events, alerts, access and timelines (no I/O, no clock)."""
