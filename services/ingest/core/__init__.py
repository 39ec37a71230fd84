"""Pure core of the ingest service: validation, unit normalisation. No I/O."""
