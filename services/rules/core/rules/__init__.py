"""The rule catalogue (core layer): one pure module per rule, folded in a fixed order."""
