"""Infection findings' thresholds the rules default to and the DSMB report counts by.

The rules read them from the trial configuration (`[infection]`, whose defaults are these);
the DSMB report's infection-findings-by-window table uses the same values.
"""

from __future__ import annotations

from typing import Final

#: CTCAE v5.0 Fever grade 1: >= 38.0 °C (RULES.md §4.3 INF-01).
FEVER_C: Final = 38.0
#: EASL 2018 decompensated cirrhosis guideline: ascitic PMN >= 250 cells/mm³ (INF-04).
SBP_ASCITIC_PMN_E9_L: Final = 0.25
#: Blood culture growth on the wire: result value 1 (unit "1"); 0 is no growth (INF-05).
CULTURE_GROWTH: Final = 1.0
