"""Machine-readable reason codes, shared by the core, the drivers, events and the console.

One enum for the whole gate so a reason means the same thing in a referral event, the
audit journal and the officer's screen. The value is the lower-case wire string: once
published it is never renamed (add a new member instead). The console text sits beside
each code in ``TEXT``. Codes are grouped by prefix:

- ``DOC_``   the document as printed (MRZ format, check digits, validity)
- ``CHIP_``  the chip (access control, LDS, passive/active/chip authentication)
- ``FACE_``  the live face (quality, presentation attack, match)
- ``THUMB_`` the live thumb against the chip's DG3 (the second biometric channel)
- ``ELIG_``  eligibility rules of the site's policy
- ``LIST_``  watchlists and registries
- ``GATE_``  the gate itself (timeouts, tailgating, devices, officer)
"""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    # --- document / MRZ ---------------------------------------------------------
    DOC_NOT_FOUND = "doc_not_found"  # no MRZ found on the page image
    DOC_UNREADABLE = "doc_unreadable"  # file empty, truncated or not an image
    DOC_FORMAT = "doc_format"  # wrong number or length of lines, bad characters
    DOC_CHECK_NUMBER = "doc_check_number"  # document number check digit
    DOC_CHECK_BIRTH = "doc_check_birth"  # date of birth check digit
    DOC_CHECK_EXPIRY = "doc_check_expiry"  # date of expiry check digit
    DOC_CHECK_OPTIONAL = "doc_check_optional"  # optional data check digit (TD3)
    DOC_CHECK_COMPOSITE = "doc_check_composite"  # composite check digit
    DOC_BAD_DATE = "doc_bad_date"  # a date field that is not a calendar date
    DOC_BAD_COUNTRY = "doc_bad_country"  # issuing state / nationality not an ICAO code
    DOC_BAD_SEX = "doc_bad_sex"
    DOC_LOW_CONFIDENCE = "doc_low_confidence"  # OCR read it but not sure enough
    DOC_UNCERTAIN_FIELD = "doc_uncertain_field"  # unsure character no check digit covers
    DOC_EXPIRED = "doc_expired"
    DOC_VALIDITY_TOO_SHORT = "doc_validity_too_short"  # fewer days left than policy
    DOC_TYPE_NOT_ACCEPTED = "doc_type_not_accepted"
    DOC_REMOVED = "doc_removed"  # document taken away before the check ended

    # --- chip -------------------------------------------------------------------
    CHIP_ABSENT = "chip_absent"  # no chip answered where the policy requires one
    CHIP_ACCESS_DENIED = "chip_access_denied"  # BAC/PACE failed (wrong key from MRZ?)
    CHIP_READ_ERROR = "chip_read_error"  # transport error, card pulled, timeout
    CHIP_SM_ERROR = "chip_sm_error"  # secure messaging MAC or format failure
    CHIP_MALFORMED = "chip_malformed"  # TLV / LDS structure broken
    CHIP_SOD_SIGNATURE = "chip_sod_signature"  # EF.SOD signature does not verify
    CHIP_DG_HASH = "chip_dg_hash"  # a data group does not match its SOD hash
    CHIP_DS_EXPIRED = "chip_ds_expired"  # document signer certificate not valid
    CHIP_DS_REVOKED = "chip_ds_revoked"  # document signer on a CRL
    CHIP_CSCA_UNKNOWN = "chip_csca_unknown"  # no trusted CSCA for the DS certificate
    CHIP_CHAIN_INVALID = "chip_chain_invalid"  # DS certificate not signed by the CSCA
    CHIP_AA_FAILED = "chip_aa_failed"  # active authentication failed: clone
    CHIP_CA_FAILED = "chip_ca_failed"  # chip authentication failed: clone
    # AA or CA key of a type, curve or parameters the reader cannot use: no clone verdict
    CHIP_CLONE_CHECK_UNSUPPORTED = "chip_clone_check_unsupported"
    CHIP_MRZ_MISMATCH = "chip_mrz_mismatch"  # DG1 differs from the printed MRZ
    CHIP_NO_PORTRAIT = "chip_no_portrait"  # DG2 missing or undecodable
    CHIP_NOT_VERIFIED = "chip_not_verified"  # passive auth (or a required AA/CA) not done
    # EAC terminal authentication: the fingerprint channel is lost, the face rule decides
    CHIP_TA_REFUSED = "chip_ta_refused"  # the chip refused our certificates or signature
    CHIP_TA_CERT_EXPIRED = "chip_ta_cert_expired"  # our IS certificate is out of date
    CHIP_TA_NO_CHAIN = "chip_ta_no_chain"  # no configured chain to a CVCA the chip trusts
    CHIP_NO_FINGERS = "chip_no_fingers"  # no DG3, or no finger image in it the gate can use

    # --- face -------------------------------------------------------------------
    FACE_NOT_FOUND = "face_not_found"
    FACE_MULTIPLE = "face_multiple"
    FACE_QUALITY = "face_quality"  # no frame passed the quality gate
    FACE_POSE = "face_pose"
    FACE_BLUR = "face_blur"
    FACE_EXPOSURE = "face_exposure"
    FACE_EYES_CLOSED = "face_eyes_closed"
    FACE_TOO_SMALL = "face_too_small"
    FACE_PAD = "face_pad"  # presentation attack suspected
    FACE_NO_MATCH = "face_no_match"  # score below the calibrated threshold
    FACE_UNREADABLE = "face_unreadable"  # portrait or frames could not be decoded

    # --- thumb (DG3 fingerprints, after EAC terminal authentication) ------------
    THUMB_NO_MATCH = "thumb_no_match"  # live thumb below the matcher's calibrated threshold
    THUMB_NOT_GIVEN = "thumb_not_given"  # no finger on the reader within the thumb timeout
    THUMB_READER_FAULT = "thumb_reader_fault"  # the reader failed or did not answer in time
    # the gate's thumb channel is unusable for this traveller (no reader configured): the
    # face rule decides; recorded, never a referral on its own
    THUMB_UNAVAILABLE = "thumb_unavailable"

    # --- eligibility ------------------------------------------------------------
    ELIG_NATIONALITY = "elig_nationality"
    ELIG_AGE_MIN = "elig_age_min"
    ELIG_AGE_MAX = "elig_age_max"
    ELIG_NO_PASS = "elig_no_pass"  # foreigner without a registered pass
    ELIG_PASS_EXPIRED = "elig_pass_expired"
    ELIG_PASS_TYPE = "elig_pass_type"
    ELIG_DIRECTION = "elig_direction"
    ELIG_CHIP_REQUIRED = "elig_chip_required"
    ELIG_OVERSTAY = "elig_overstay"  # departure: stayed beyond the category's permitted stay
    ELIG_OVERSTAY_PASS = "elig_overstay_pass"  # departure: the pass expired during the stay

    # --- watchlists -------------------------------------------------------------
    LIST_STOLEN_DOC = "list_stolen_doc"
    LIST_LOST_DOC = "list_lost_doc"
    LIST_PERSON = "list_person"
    LIST_UNAVAILABLE = "list_unavailable"  # a required check could not be made

    # --- the gate ---------------------------------------------------------------
    GATE_TIMEOUT = "gate_timeout"  # a step took longer than its state allows
    GATE_TAILGATING = "gate_tailgating"
    GATE_UNEXPECTED_OCCUPANT = "gate_unexpected_occupant"  # someone inside with no crossing
    GATE_DOOR_FORCED = "gate_door_forced"
    GATE_DOOR_STUCK = "gate_door_stuck"  # a door did not close/open when commanded
    GATE_TAMPER = "gate_tamper"
    GATE_DEVICE_FAULT = "gate_device_fault"
    GATE_LINK_LOST = "gate_link_lost"
    GATE_EMERGENCY = "gate_emergency"
    GATE_OFFICER = "gate_officer"  # an officer's command ended the transaction
    GATE_RESTART = "gate_restart"  # the daemon restarted mid-crossing
    GATE_ENTRY_NOT_USED = "gate_entry_not_used"  # entry opened, nobody walked in
    GATE_UNATTENDED = "gate_unattended"  # a referral waited too long for an officer
    GATE_COMMAND_REFUSED = "gate_command_refused"  # a forged or replayed command
    GATE_OUTBOX_FULL = "gate_outbox_full"
    GATE_SESSION_TAKEN_OVER = "gate_session_taken_over"  # its broker account used elsewhere


TEXT: dict[ReasonCode, str] = {
    ReasonCode.DOC_NOT_FOUND: "No machine-readable zone found on the document",
    ReasonCode.DOC_UNREADABLE: "Document image could not be read",
    ReasonCode.DOC_FORMAT: "Machine-readable zone has the wrong format",
    ReasonCode.DOC_CHECK_NUMBER: "Document number check digit is wrong",
    ReasonCode.DOC_CHECK_BIRTH: "Date of birth check digit is wrong",
    ReasonCode.DOC_CHECK_EXPIRY: "Date of expiry check digit is wrong",
    ReasonCode.DOC_CHECK_OPTIONAL: "Optional data check digit is wrong",
    ReasonCode.DOC_CHECK_COMPOSITE: "Composite check digit is wrong",
    ReasonCode.DOC_BAD_DATE: "A date on the document is not a real date",
    ReasonCode.DOC_BAD_COUNTRY: "Unknown issuing state or nationality code",
    ReasonCode.DOC_BAD_SEX: "Sex field is not F, M or <",
    ReasonCode.DOC_LOW_CONFIDENCE: "Machine-readable zone read with low confidence",
    ReasonCode.DOC_UNCERTAIN_FIELD: "A name or code on the page could not be read for sure",
    ReasonCode.DOC_EXPIRED: "Document has expired",
    ReasonCode.DOC_VALIDITY_TOO_SHORT: "Document expires too soon for this gate",
    ReasonCode.DOC_TYPE_NOT_ACCEPTED: "This type of document is not accepted at the gate",
    ReasonCode.DOC_REMOVED: "Document was removed before the check finished",
    ReasonCode.CHIP_ABSENT: "No chip could be read",
    ReasonCode.CHIP_ACCESS_DENIED: "Chip refused access with the printed MRZ",
    ReasonCode.CHIP_READ_ERROR: "Chip read failed",
    ReasonCode.CHIP_SM_ERROR: "Chip secure messaging failed",
    ReasonCode.CHIP_MALFORMED: "Chip data is malformed",
    ReasonCode.CHIP_SOD_SIGNATURE: "Chip security object signature is invalid",
    ReasonCode.CHIP_DG_HASH: "Chip data does not match its signed hash",
    ReasonCode.CHIP_DS_EXPIRED: "Document signer certificate is not valid",
    ReasonCode.CHIP_DS_REVOKED: "Document signer certificate is revoked",
    ReasonCode.CHIP_CSCA_UNKNOWN: "Issuing state's signing certificate is not trusted here",
    ReasonCode.CHIP_CHAIN_INVALID: "Certificate chain of the chip does not verify",
    ReasonCode.CHIP_AA_FAILED: "Active authentication failed: possible cloned chip",
    ReasonCode.CHIP_CA_FAILED: "Chip authentication failed: possible cloned chip",
    ReasonCode.CHIP_CLONE_CHECK_UNSUPPORTED: (
        "Clone check could not be done: the chip's key type or curve is not supported"
    ),
    ReasonCode.CHIP_MRZ_MISMATCH: "Chip data differs from the printed page",
    ReasonCode.CHIP_NO_PORTRAIT: "Chip portrait is missing or unreadable",
    ReasonCode.CHIP_NOT_VERIFIED: "Chip data could not be verified as genuine",
    ReasonCode.CHIP_TA_REFUSED: "Chip refused the gate's terminal authentication",
    ReasonCode.CHIP_TA_CERT_EXPIRED: "The gate's inspection system certificate has expired",
    ReasonCode.CHIP_TA_NO_CHAIN: "No terminal certificate chain for this issuing state",
    ReasonCode.CHIP_NO_FINGERS: "Chip holds no usable fingerprint",
    ReasonCode.FACE_NOT_FOUND: "No face seen by the camera",
    ReasonCode.FACE_MULTIPLE: "More than one face seen by the camera",
    ReasonCode.FACE_QUALITY: "Live face image quality too low",
    ReasonCode.FACE_POSE: "Face not looking at the camera",
    ReasonCode.FACE_BLUR: "Live face image is blurred",
    ReasonCode.FACE_EXPOSURE: "Live face image too dark or too bright",
    ReasonCode.FACE_EYES_CLOSED: "Eyes closed",
    ReasonCode.FACE_TOO_SMALL: "Face too far from the camera",
    ReasonCode.FACE_PAD: "Possible presentation attack (photo or screen)",
    ReasonCode.FACE_NO_MATCH: "Live face does not match the chip portrait",
    ReasonCode.FACE_UNREADABLE: "Face image could not be decoded",
    ReasonCode.THUMB_NO_MATCH: "Live thumb does not match the chip fingerprint",
    ReasonCode.THUMB_NOT_GIVEN: "No thumb was placed on the reader",
    ReasonCode.THUMB_READER_FAULT: "The thumb reader failed",
    ReasonCode.THUMB_UNAVAILABLE: "No thumb reader at this gate",
    ReasonCode.ELIG_NATIONALITY: "Nationality not eligible for this gate",
    ReasonCode.ELIG_AGE_MIN: "Traveller is below the minimum age",
    ReasonCode.ELIG_AGE_MAX: "Traveller is above the maximum age",
    ReasonCode.ELIG_NO_PASS: "No registered pass for this foreign traveller",
    ReasonCode.ELIG_PASS_EXPIRED: "Registered pass has expired",
    ReasonCode.ELIG_PASS_TYPE: "Pass type not eligible for this gate",
    ReasonCode.ELIG_DIRECTION: "Not eligible in this direction of travel",
    ReasonCode.ELIG_CHIP_REQUIRED: "A chip read is required for this traveller",
    ReasonCode.ELIG_OVERSTAY: "Stayed beyond the permitted stay",
    ReasonCode.ELIG_OVERSTAY_PASS: "Pass expired during the stay",
    ReasonCode.LIST_STOLEN_DOC: "Document reported stolen",
    ReasonCode.LIST_LOST_DOC: "Document reported lost",
    ReasonCode.LIST_PERSON: "Watchlist match on the person",
    ReasonCode.LIST_UNAVAILABLE: "A required watchlist check could not be made",
    ReasonCode.GATE_TIMEOUT: "The step took too long",
    ReasonCode.GATE_TAILGATING: "More than one person in the gate",
    ReasonCode.GATE_UNEXPECTED_OCCUPANT: "Someone is in the gate without a crossing",
    ReasonCode.GATE_DOOR_FORCED: "A door was forced open",
    ReasonCode.GATE_DOOR_STUCK: "A door did not move as commanded",
    ReasonCode.GATE_TAMPER: "Gate cabinet tamper switch",
    ReasonCode.GATE_DEVICE_FAULT: "A gate device failed",
    ReasonCode.GATE_LINK_LOST: "Link to the gate controller lost",
    ReasonCode.GATE_EMERGENCY: "Emergency release active",
    ReasonCode.GATE_OFFICER: "Ended by an officer",
    ReasonCode.GATE_RESTART: "Gate restarted during the crossing",
    ReasonCode.GATE_ENTRY_NOT_USED: "Entry opened but nobody entered",
    ReasonCode.GATE_UNATTENDED: "Referral waited too long for an officer",
    ReasonCode.GATE_COMMAND_REFUSED: "A command was refused (unsigned, forged or replayed)",
    ReasonCode.GATE_OUTBOX_FULL: "Event outbox is full",
    ReasonCode.GATE_SESSION_TAKEN_OVER: "Another client took over the gate's broker session",
}


def text(code: ReasonCode) -> str:
    """Short human text for the console; every code has one (a test checks)."""
    return TEXT[code]
