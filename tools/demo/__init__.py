"""Demo trial feed for NCT01724398: a deterministic, realistic stream of source submissions."""

from tools.demo.generator import generate_events, generate_feed, iter_feed, summarise

__all__ = ["generate_events", "generate_feed", "iter_feed", "summarise"]
