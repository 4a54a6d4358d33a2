"""Retrieval: hybrid search with the ACL inside Qdrant, stitching, dedupe, packing, citations."""
