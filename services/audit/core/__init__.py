"""The audit's pure core: chain verification, the replay's fold, comparisons and judgments."""
