"""Checks before a sync writes anything: who owns each source, and how much of it the sync would delete.

A source is owned by the manifest that first synced it (``Manifest.owner``: its resolved file path,
or ``inline:<data root>`` for a manifest sent over HTTP). Another manifest naming the same source is
refused unless the caller asks to take it over; the takeover is kept in the ledger and the report.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import SyncRefusedError
from ingest.ledger import Ledger
from ingest.manifest import Manifest
from ingest.report import JobReport
from ingest.sources import SourceFailure, SourceItem

Listed = Sequence[tuple[Manifest, list[SourceItem | SourceFailure]]]


def check_sync_allowed(
    listed: Listed, ledger: Ledger, *, max_delete_share: float, take_over: bool, allow_mass_delete: bool
) -> None:
    """Raise SyncRefusedError (nothing written yet) for a source owned by another manifest, or a
    sync deleting more than ``max_delete_share`` of a source's documents."""
    for manifest, items in listed:
        owner = ledger.source_owner(manifest.source)
        if owner is not None and owner != manifest.owner and not take_over:
            raise SyncRefusedError(
                f"{manifest.origin}: source {manifest.source!r} belongs to another manifest ({owner}); "
                "nothing was ingested. Rename the source, or take it over explicitly "
                "(stitch ingest --take-over; HTTP: \"take_over\": true)"
            )
        if not allow_mass_delete:
            _check_delete_share(manifest, items, ledger, max_delete_share)


def _check_delete_share(manifest: Manifest, items: list, ledger: Ledger, share: float) -> None:
    if any(isinstance(i, SourceFailure) and i.doc_id is None for i in items):
        return  # unreadable rows: the sync deletes nothing anyway
    known = ledger.for_source(manifest.source)
    seen = {i.doc_id for i in items if i.doc_id and not getattr(i, "outside", False)}
    doomed = len(set(known) - seen)
    if known and doomed > share * len(known):
        raise SyncRefusedError(
            f"{manifest.origin}: this sync would delete {doomed} of the {len(known)} documents of source "
            f"{manifest.source!r} (more than {share:.0%}); nothing was ingested. If that is intended, "
            "re-run with --allow-mass-delete (HTTP: \"allow_mass_delete\": true)"
        )


def claim_source(manifest: Manifest, ledger: Ledger, report: JobReport) -> None:
    """Record ``manifest`` as the owner of its source (after check_sync_allowed passed)."""
    owner = ledger.source_owner(manifest.source)
    if owner == manifest.owner:
        return
    if owner is None:
        how = "adopted" if ledger.for_source(manifest.source) else "created"
    else:
        how = "taken over"
        report.takeovers.append({"source": manifest.source, "from": owner, "to": manifest.owner})
        report.warnings.append(f"{manifest.source}: taken over from another manifest ({owner})")
    ledger.set_source_owner(manifest.source, manifest.owner, how=how)
