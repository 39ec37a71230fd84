"""Services of safetymon; each is independent and talks to the others only over NATS."""
