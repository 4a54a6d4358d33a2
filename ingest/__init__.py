"""Ingestion: manifests → documents → chunks → ACL → entities → vectors → store, tracked by a ledger."""
