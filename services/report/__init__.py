"""DSMB safety report by arm: a read-side service over the event log."""
