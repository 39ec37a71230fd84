"""The safety console: a read-side projection of facts, signals and notify's facts, and pages."""
