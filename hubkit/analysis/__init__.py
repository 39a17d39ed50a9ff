"""Reanalysis: weight changes of fine-tunes against their base (`layerdiff`) and data perplexity (`perplexity`)."""
