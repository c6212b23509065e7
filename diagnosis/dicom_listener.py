"""The C-STORE SCP: PACSes and modalities send radiographs; each becomes a study exactly as an upload does.

A calling AE title must be a DicomPeer (Django admin), which names the clinic and the user recorded as the
uploader; any other caller is refused at association (PS3.8 reason: calling AE title not recognised) and audited,
as is a peer calling another AE title than ours, or an association beyond DICOM_MAX_ASSOCIATIONS at once (each
audited as what it was, with the peer's clinic when the caller is one).
Each received instance goes through the same gate (validation.validate_upload) and intake (intake.create_study):
a refused one answers a failure status whose comment is the reason.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, StoragePresentationContexts, evt
from pynetdicom.events import EventHandlerType
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from diagnosis import audit, intake
from diagnosis.audit import Origin
from diagnosis.models import AuditAction, DicomPeer
from diagnosis.validation import UploadError, validate_upload

logger = logging.getLogger(__name__)
NO_CALLER = "-NO-PEERS-"  # pynetdicom accepts anyone when the list is empty: this name matches no caller
REFUSED = 0xC000  # "Cannot understand": the file is not something the service judges
OUT_OF_RESOURCES = 0xA700


class ListenerAE(AE):
    """An AE whose allowed callers are read from the database at every association (admin edits apply at once)."""

    @property
    def require_calling_aet(self) -> list[str]:
        close_old_connections()
        titles = list(DicomPeer.objects.filter(active=True).values_list("ae_title", flat=True))
        return titles or [NO_CALLER]

    @require_calling_aet.setter
    def require_calling_aet(self, value: list[str]) -> None:
        pass


def build_ae(ae_title: str) -> ListenerAE:
    ae = ListenerAE(ae_title=ae_title)
    ae.maximum_associations = settings.DICOM_MAX_ASSOCIATIONS
    for context in StoragePresentationContexts:
        if context.abstract_syntax:
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification)
    ae.require_called_aet = True
    return ae


def start(ae_title: str, host: str, port: int) -> ThreadedAssociationServer:
    """Listen in a background thread (port 0: a free one, read server.server_address[1])."""
    handlers: list[EventHandlerType] = [(evt.EVT_C_STORE, handle_store), (evt.EVT_REJECTED, handle_rejected)]
    server = build_ae(ae_title).start_server((host, port), block=False, evt_handlers=handlers)
    if server is None:  # only with block=True
        raise RuntimeError("the DICOM listener did not start")
    return server


def handle_rejected(event: Any) -> None:
    """Audit a refused association as what it was: pynetdicom's event does not say, so the checks it made are
    made again (the association limit is checked last and wins, as pynetdicom's answer does)."""
    assoc = event.assoc
    requestor = assoc.requestor
    calling = str(requestor.ae_title).strip()
    called = str(getattr(requestor.primitive, "called_ae_title", "") or "").strip()
    ours = str(assoc.ae.ae_title).strip()
    close_old_connections()
    peer = DicomPeer.objects.select_related("clinic").filter(ae_title=calling, active=True).first()
    acceptors = sum(1 for a in assoc.ae.active_associations if a.is_acceptor)
    if acceptors > assoc.ae.maximum_associations:
        reason = f"too many associations at once (the limit is {assoc.ae.maximum_associations})"
    elif peer is None:
        reason = "unknown calling AE title"
    elif called != ours:
        reason = f"a known peer called AE title {called or '(none)'}, not this listener's {ours}"
    else:
        reason = "refused at association"
    audit.record(
        None,
        AuditAction.DICOM_REFUSED,
        detail={"calling_ae": calling, "called_ae": called, "reason": reason},
        origin=Origin(ip=requestor.address),
        username=f"dicom:{calling}"[:150],
        clinic=peer.clinic if peer is not None else None,
    )
    logger.warning("refused DICOM association from %s at %s: %s", calling, requestor.address, reason)


def handle_store(event: Any) -> int | Dataset:
    close_old_connections()
    requestor = event.assoc.requestor
    peer = DicomPeer.objects.select_related("uploader").filter(ae_title=requestor.ae_title, active=True).first()
    if peer is None:  # deactivated during the association
        return _failure(REFUSED, "calling AE title not configured")
    if not _uploader_belongs(peer):  # the peer's clinic decides; an uploader moved or deactivated since is refused
        logger.warning("refused an instance from %s: its uploader is not an active member of %s", peer, peer.clinic)
        return _failure(REFUSED, "the peer's uploader is not an active member of the peer's clinic")
    data = event.encoded_dataset(include_meta=True)
    name = f"{event.request.AffectedSOPInstanceUID}.dcm"
    try:
        upload = validate_upload(name, len(data), io.BytesIO(data))
    except UploadError as exc:
        logger.info("refused %s from %s: %s", name, requestor.ae_title, exc.message)
        return _failure(REFUSED, exc.message)
    try:
        intake.create_study(peer.uploader, upload, origin=Origin(ip=requestor.address), peer=peer)
    except Exception:
        logger.exception("could not store %s from %s", name, requestor.ae_title)
        return _failure(OUT_OF_RESOURCES, "the service could not store the instance; try again")
    return 0x0000


def _uploader_belongs(peer: DicomPeer) -> bool:
    membership = getattr(peer.uploader, "membership", None)
    return bool(peer.uploader.is_active and membership is not None and membership.clinic_id == peer.clinic_id)


def _failure(status: int, comment: str) -> Dataset:
    ds = Dataset()
    ds.Status = status
    ds.ErrorComment = comment[:64]
    return ds
