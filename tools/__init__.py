"""Developer tools: the demo feed generator, the fault-injection harnesses, embedded servers.

Not part of the runtime: nothing in schemas, clinical, kit, services or safetymon imports it.
"""
