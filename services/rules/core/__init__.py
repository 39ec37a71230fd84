"""Pure core of the rules service: state, rules, signal building; no I/O, no clock."""
