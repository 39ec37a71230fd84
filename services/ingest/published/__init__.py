"""What the audit may rely on of the ingest service; changing it is a contract change.

The audit exports the event log with ingest's own COPY statement when the services are
stopped, and compares the log with the heads ingest published on its anchors stream (read
with ingest's reader, kept in a bundle under ingest's file name): all in `snapshot`. The
log's wire form and hash chain themselves are in `schemas`.
"""
