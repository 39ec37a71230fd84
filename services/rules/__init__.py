"""Rules service: evaluates arriving facts against the trial's safety rules."""
