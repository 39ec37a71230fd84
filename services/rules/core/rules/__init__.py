"""The safety rules (core layer): one pure module per rule, folded in a fixed order.

The order and the versions a configuration runs are `engine.rules_for`'s.
"""
