"""Pure core of the notify service: routing, planning, audit chain, retry timing."""
