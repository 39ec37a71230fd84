"""Pure core of the report: configuration, table building and stopping-rule statistics."""
