"""The case identity of an adverse event, as a pseudonymous code scoped to its participant (pure).

ICH E2D: follow-up information updates the case it belongs to. Sources name the case in their
own words (SDTM AESPID or AEGRPID, a FHIR AdverseEvent.identifier, a site's case number), and
those words are only unique within one participant (every subject of the CDISC pilot has an
`E01`), so the participant code is always part of the id, as it is of SDTM's ae_ref.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

#: The contract's `Code` (schemas/_base.py): what a case id must look like on the wire.
_CODE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def case_id(participant: str, kind: str, value: str) -> str | None:
    """`<participant>.<kind>.<value>`, or a digest of the value when it cannot be spelled so.

    `kind` names where the value came from (`AESPID`, `AEGRPID`, `AEID`, `CASE`), so two
    columns that happen to hold the same text never join two cases. A value with characters a
    `Code` may not hold, or one that makes the id too long, is replaced by the first 16 hex
    digits of its SHA-256: still deterministic, so a re-import gives the same id. None when
    the source gives no value.
    """
    text = value.strip()
    if not text:
        return None
    readable = f"{participant}.{kind}.{text}"
    if _CODE.fullmatch(readable):
        return readable
    digest = f"{participant}.{kind}.h{_sha256(text)[:16]}"
    if _CODE.fullmatch(digest):
        return digest
    # A participant code near the 64-character limit: the participant goes into the digest.
    scoped = "\x1f".join((participant, kind, text))
    return f"AECASE.{_sha256(scoped)[:32]}"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
