"""Importers: FHIR R4, CDISC SDTM and site CSV records to safetymon submissions.

The mapping modules (`sdtm`, `fhir`, `csv_map`, `dates`) are pure: records in, `Mapped`
submissions or `Unmapped` reasons out. `files` reads sources and `run` posts batches to the
ingest API through `safetymon.ingest_files`.
"""
