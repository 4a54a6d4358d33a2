"""Evaluations: BEIR retrieval quality, entity resolution, access-control leaks; metrics and reports."""
