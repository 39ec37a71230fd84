"""safetymon command line and quick-start runner: wires the three services together."""
