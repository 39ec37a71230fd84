"""One definition of each clinical meaning, shared by the rules, the DSMB report and the audit.

Pure: the standard library and `schemas` only (no I/O, no clock, no globals that change).
What "serious", "fatal", "related", a lab kind, a CTCAE grade, a MELD score or a procedure
window means is written here once; the rules evaluate it in Python and the report's SQL is
generated from (or checked against) the same definitions.
"""
