"""Rules service: evaluates arriving facts against the safety rule catalogue."""
