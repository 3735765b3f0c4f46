"""The structure of NCMEC CyberTipline ``<report>`` and ``<fileDetails>`` XML, and a checker.

Transcribed from ``specs/ncmec/cybertipline-report-structure.md`` (element order,
cardinality, enumerations, attribute rules) because NCMEC's XSD cannot be redistributed.
:func:`check` implements section 11 of that note: a sequence walk that fails on a missing,
repeated, unknown or out-of-order child; ``xs:all`` and ``xs:choice`` groups; enumeration,
boolean, number and date-time lexical checks; attribute checks; then the server-side business
rules we rely on (a reporter e-mail, time zones, "in the past", file relevance).

Notation of :data:`TYPES`: ``name`` (1..1), ``name?`` (0..1), ``name*`` (0..n), ``name+``
(1..n), ``a|b?`` (a choice of one of the names), then ``:type`` (a complex or attributed
type below) or ``=simple`` (``str``, ``bool``, ``flag``, ``int``, ``long``, ``double``,
``date``, ``dateTime``, ``enum.NAME``). No suffix type means ``=str``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree import ElementTree as ET


def _words(text: str) -> list[str]:
    return text.split()


ENUMS: dict[str, frozenset[str]] = {
    "incidentType": frozenset(
        {
            "Child Pornography (possession, manufacture, and distribution)",
            "Child Sex Trafficking",
            "Child Sex Tourism",
            "Child Sexual Molestation",
            "Misleading Domain Name",
            "Misleading Words or Digital Images on the Internet",
            "Online Enticement of Children for Sexual Acts",
            "Unsolicited Obscene Material Sent to a Child",
        }
    ),
    "batchedReportReason": frozenset({"VIRAL_POTENTIAL_MEME"}),
    "ipCaptureType": frozenset({"Login", "Registration", "Purchase", "Upload", "Other", "Unknown"}),
    "fileRelevance": frozenset({"Reported", "Supplemental Reported"}),
    "fileClassification": frozenset({"A1", "A2", "B1", "B2"}),
    "metadataTypes": frozenset({"EXIF", "HASH"}),
    "addressType": frozenset({"Home", "Business", "Billing", "Shipping", "Technical"}),
    "emailType": frozenset({"Home", "Work", "Business", "Recovery"}),
    "phoneType": frozenset({"Mobile", "Home", "Business", "Work", "Fax", "Internet", "Recovery"}),
    "associatedAccountType": frozenset(
        {"Billing", "Linked", "Business", "Creator", "Parent/Guardian", "Other"}
    ),
    "state": frozenset(
        (
            "",
            *_words("""AK AL AR AZ CA CO CT DC DE FL GA GU HI IA ID IL IN
        KS KY LA MA MD
        ME MI MN MO MS MT NC ND NE NH NJ NM NV NY OH OK OR PA PR RI SC SD TN TX UT VA VI VT WA
        WI WV WY"""),
        )
    ),
    "country": frozenset(
        (
            "",
            *_words("""A1 A2 O1 AD AE AF AG AI AL AM AN AO AP AQ AR AS AT
        AU AW AX AZ
        BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL
        CM CN CO CR CU CV CX CW CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET EU FI FJ FK FM FO FR
        FX GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM
        IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU
        LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG
        NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB
        SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
        TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW"""),
        )
    ),
}

_PERSON_COMMON = "ipCaptureEvent*:ipCaptureEvent deviceId*:deviceId"
TYPES: dict[str, tuple[str, str]] = {
    # type: (group kind, children)
    "report": (
        "seq",
        """batchedReport?:batchedReport incidentSummary:incidentSummary
        internetDetails*:internetDetails lawEnforcement?:lawEnforcement reporter:reporter
        personOrUserReported*:personOrUserReported intendedRecipient*:intendedRecipient
        victim*:victim additionalInfo?""",
    ),
    "incidentSummary": (
        "seq",
        """incidentType=enum.incidentType platform?
        escalateToHighPriority? reportAnnotations?:reportAnnotations incidentDateTime=dateTime
        incidentDateTimeDescription?""",
    ),
    "reportAnnotations": (
        "all",
        """sextortion?=flag csamSolicitation?=flag
        minorToMinorInteraction?=flag spam?=flag sadisticOnlineExploitation?=flag""",
    ),
    "internetDetails": (
        "choice",
        """webPageIncident:webPageIncident
        emailIncident:emailIncident newsgroupIncident:newsgroupIncident
        chatImIncident:chatImIncident onlineGamingIncident:onlineGamingIncident
        cellPhoneIncident:cellPhoneIncident nonInternetIncident:nonInternetIncident
        peer2peerIncident:peer2peerIncident""",
    ),
    "webPageIncident": ("seq", "url* additionalInfo?"),
    "emailIncident": ("seq", "emailAddress*:email content? additionalInfo?"),
    "newsgroupIncident": ("seq", "name? emailAddress*:email content? additionalInfo?"),
    "chatImIncident": ("seq", "chatClient? chatRoomName? content? additionalInfo?"),
    "onlineGamingIncident": ("seq", "gameName? console? content? additionalInfo?"),
    "cellPhoneIncident": (
        "seq",
        """phoneNumber?:phone latitude?=double longitude?=double
        additionalInfo?""",
    ),
    "nonInternetIncident": ("seq", "locationName? incidentAddress*:address additionalInfo?"),
    "peer2peerIncident": (
        "seq",
        """client? ipCaptureEvent*:ipCaptureEvent fileNames?
        additionalInfo?""",
    ),
    "lawEnforcement": (
        "seq",
        """agencyName caseNumber? officerContact?:contactPerson
        reportedToLe?:reportedToLawEnforcement servedLegalProcessDomestic?=bool
        servedLegalProcessInternational?:servedLegalProcessInternational""",
    ),
    "reporter": (
        "seq",
        """reportingPerson:person contactPerson?:contactPerson
        companyTemplate? termsOfService? legalURL?""",
    ),
    "personOrUserReported": (
        "seq",
        f"""personOrUserReportedPerson?:person
        vehicleDescription? espIdentifier? espService? compromisedAccount?=bool screenName?
        displayName* profileUrl* profileBio? {_PERSON_COMMON} thirdPartyUserReported?=bool
        priorCTReports*=long groupIdentifier?
        accountTemporarilyDisabled?:accountTemporarilyDisabled
        accountPermanentlyDisabled?:accountPermanentlyDisabled
        estimatedLocation?:estimatedLocation allEmailsReported?=bool
        associatedAccount*:associatedAccount additionalInfo?""",
    ),
    "intendedRecipient": (
        "seq",
        f"""intendedRecipientPerson?:person espIdentifier?
        espService? compromisedAccount?=bool screenName? displayName* profileUrl* profileBio?
        {_PERSON_COMMON} priorCTReports*=long groupIdentifier?
        accountTemporarilyDisabled?:accountTemporarilyDisabled
        accountPermanentlyDisabled?:accountPermanentlyDisabled
        estimatedLocation?:estimatedLocation allEmailsReported?=bool additionalInfo*""",
    ),
    "victim": (
        "seq",
        f"""victimPerson:person espIdentifier? espService?
        compromisedAccount?=bool screenName? displayName* profileUrl* profileBio?
        {_PERSON_COMMON} schoolName? priorCTReports*=long
        accountTemporarilyDisabled?:accountTemporarilyDisabled
        accountPermanentlyDisabled?:accountPermanentlyDisabled
        estimatedLocation?:estimatedLocation allEmailsReported?=bool
        associatedAccount*:associatedAccount additionalInfo?""",
    ),
    "associatedAccount": (
        "seq",
        """platform?:aaPlatform firstName? middleName? lastName?
        approximateAge?=int dateOfBirth?=date phone*:phone email*:email allEmailsReported?=bool
        address*:address espService? espIdentifier? profileUrl* screenName? displayName*
        profileBio? groupIdentifier? compromisedAccount?=bool
        accountTemporarilyDisabled?:accountTemporarilyDisabled
        accountPermanentlyDisabled?:accountPermanentlyDisabled
        ipCaptureEvent*:ipCaptureEvent deviceId*:deviceId priorCTReport*=long additionalInfo?""",
    ),
    "person": (
        "seq",
        """firstName? lastName? phone*:phone email*:email address*:address
        age?=int dateOfBirth?=date""",
    ),
    "contactPerson": ("seq", "firstName? lastName? phone*:phone email*:email address*:address"),
    "address": (
        "seq",
        """address? city? zipCode? state?=enum.state nonUsaState?
        country?=enum.country""",
    ),
    "estimatedLocation": ("seq", "city? region? countryCode?=enum.country"),
    "ipCaptureEvent": (
        "seq",
        """ipAddress eventName?=enum.ipCaptureType dateTime?=dateTime
        possibleProxy?=bool port?=int""",
    ),
    "deviceId": ("seq", "idType idValue eventName?=enum.ipCaptureType dateTime?=dateTime"),
    "fileDetails": (
        "seq",
        """reportId=long fileId fileName? originalFileName?
        uploadedToEspTimestamp?=dateTime locationOfFile? fileViewedByEsp?=bool
        exifViewedByEsp?=bool publiclyAvailable?=bool fileRelevance?=enum.fileRelevance
        potentialMeme|fileAnnotations?:memeOrAnnotations
        industryClassification?=enum.fileClassification originalFileHash*:hash
        ipCaptureEvent?:ipCaptureEvent deviceId*:deviceId details*:details additionalInfo*""",
    ),
    "fileAnnotations": (
        "all",
        """animeDrawingVirtualHentai?=flag potentialMeme?=flag
        viral?=flag possibleSelfProduction?=flag physicalHarm?=flag violenceGore?=flag
        bestiality?=flag liveStreaming?=flag infant?=flag generativeAi?=flag""",
    ),
    "details": ("seq", "nameValuePair+:nameValue"),
    "nameValue": ("seq", "name value"),
}

# Types with simple content (and maybe attributes): type -> simple content kind
SIMPLE_CONTENT = {
    "email": "str",
    "phone": "str",
    "hash": "str",
    "batchedReport": "empty",
    "accountTemporarilyDisabled": "bool",
    "accountPermanentlyDisabled": "bool",
    "reportedToLawEnforcement": "bool",
    "servedLegalProcessInternational": "bool",
    "aaPlatform": "str",
}
# Attributes per type: name -> (simple kind, required)
ATTRS: dict[str, dict[str, tuple[str, bool]]] = {
    "batchedReport": {"reason": ("enum.batchedReportReason", True)},
    "webPageIncident": {"thirdPartyHostedContent": ("bool", False)},
    "address": {"type": ("enum.addressType", False)},
    "email": {
        "type": ("enum.emailType", False),
        "verified": ("bool", False),
        "verificationDate": ("dateTime", False),
    },
    "phone": {
        "type": ("enum.phoneType", False),
        "verified": ("bool", False),
        "verificationDate": ("dateTime", False),
        "countryCallingCode": ("callingCode", False),
        "extension": ("extension", False),
    },
    "estimatedLocation": {"verified": ("bool", False), "timestamp": ("dateTime", False)},
    "accountTemporarilyDisabled": {
        "disabledDate": ("dateTime", False),
        "userNotified": ("bool", False),
        "userNotifiedDate": ("dateTime", False),
        "reenabledDate": ("dateTime", False),
    },
    "accountPermanentlyDisabled": {
        "disabledDate": ("dateTime", False),
        "userNotified": ("bool", False),
        "userNotifiedDate": ("dateTime", False),
    },
    "servedLegalProcessInternational": {"fleaCountry": ("enum.country", False)},
    "associatedAccount": {"type": ("enum.associatedAccountType", True)},
    "details": {"type": ("enum.metadataTypes", False)},
    "hash": {"hashType": ("str", True)},
    "aaPlatform": {"thirdPartyUser": ("bool", False)},
}
# Only these two roots are documented as document roots we send.
ROOTS = {"report": "report", "fileDetails": "fileDetails"}
XSI = "http://www.w3.org/2001/XMLSchema-instance"

_DATETIME = re.compile(r"^-?\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(Z|[+-]\d{2}:\d{2})?$")
_INT = re.compile(r"^[+-]?\d+$")
_SIMPLE_RE = {"callingCode": re.compile(r"^\+[0-9]{1,3}$"), "extension": re.compile(r"^[0-9]+$")}


@dataclass(frozen=True, slots=True)
class _Entry:
    names: tuple[str, ...]
    min: int
    max: int | None
    type: str  # complex type name, or "=simple"


def _parse(children: str) -> list[_Entry]:
    out = []
    for token in children.split():
        m = re.fullmatch(r"([\w|]+)([?*+]?)(?:(:)(\w+)|=([\w.]+))?", token)
        if not m:
            raise ValueError(f"bad structure token {token!r}")
        names, card, colon, ctype, simple = m.groups()
        lo, hi = {"": (1, 1), "?": (0, 1), "*": (0, None), "+": (1, None)}[card]
        typ = ctype if colon else "=" + (simple or "str")
        out.append(_Entry(tuple(names.split("|")), lo, hi, typ))
    return out


_STRUCT = {name: (kind, _parse(children)) for name, (kind, children) in TYPES.items()}


def check(xml: bytes | str) -> list[str]:
    """Every structural, enumeration and business-rule problem in a report or fileDetails."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        return [f"not well-formed XML: {exc}"]
    if root.tag not in ROOTS:
        return [f"root element must be <report> or <fileDetails>, not <{root.tag}>"]
    problems: list[str] = []
    _check_element(root, ROOTS[root.tag], root.tag, problems, is_root=True)
    problems.extend(_business_rules(root))
    return problems


def _check_element(
    el: ET.Element, typ: str, path: str, out: list[str], is_root: bool = False
) -> None:
    _check_attrs(el, typ, path, out, is_root)
    if typ == "memeOrAnnotations":  # the fileDetails choice: whichever name was used
        typ = "=bool" if el.tag == "potentialMeme" else "fileAnnotations"
    if typ.startswith("="):
        _check_simple(el, typ[1:], path, out)
        return
    if typ in SIMPLE_CONTENT:
        _check_simple(el, SIMPLE_CONTENT[typ], path, out)
        return
    kind, entries = _STRUCT[typ]
    if (el.text or "").strip():
        out.append(f"{path}: unexpected text in an element that holds only elements")
    children = list(el)
    if kind == "seq":
        _walk_sequence(children, entries, path, out)
    elif kind == "all":
        seen: set[str] = set()
        allowed = {n: e for e in entries for n in e.names}
        for c in children:
            if c.tag not in allowed:
                out.append(f"{path}: <{c.tag}> is not allowed here")
            elif c.tag in seen:
                out.append(f"{path}: <{c.tag}> appears twice")
            else:
                seen.add(c.tag)
                _check_element(c, allowed[c.tag].type, f"{path}/{c.tag}", out)
    else:  # choice: exactly one child
        allowed = {n: e for e in entries for n in e.names}
        if len(children) != 1:
            out.append(f"{path}: must hold exactly one of {sorted(allowed)}, holds {len(children)}")
        for c in children:
            if c.tag not in allowed:
                out.append(f"{path}: <{c.tag}> is not allowed here")
            else:
                _check_element(c, allowed[c.tag].type, f"{path}/{c.tag}", out)


def _walk_sequence(
    children: list[ET.Element], entries: list[_Entry], path: str, out: list[str]
) -> None:
    counts = [0] * len(entries)
    pos = 0
    for c in children:
        j = next((k for k in range(pos, len(entries)) if c.tag in entries[k].names), None)
        if j is None:
            earlier = next((e for e in entries[:pos] if c.tag in e.names), None)
            if earlier is not None:
                out.append(
                    f"{path}: <{c.tag}> is out of order: it must come before "
                    f"<{'|'.join(entries[pos].names)}>"
                )
                _check_element(c, earlier.type, f"{path}/{c.tag}", out)
            else:
                out.append(f"{path}: <{c.tag}> is not allowed here")
            continue
        for k in range(pos, j):
            if counts[k] < entries[k].min:
                out.append(f"{path}: missing <{'|'.join(entries[k].names)}> before <{c.tag}>")
        pos = j
        counts[j] += 1
        mx = entries[j].max
        if mx is not None and counts[j] > mx:
            out.append(f"{path}: too many <{'|'.join(entries[j].names)}> (at most {mx})")
        _check_element(c, entries[j].type, f"{path}/{c.tag}", out)
    for k in range(pos, len(entries)):
        if counts[k] < entries[k].min:
            out.append(f"{path}: missing <{'|'.join(entries[k].names)}>")


def _check_simple(el: ET.Element, kind: str, path: str, out: list[str]) -> None:
    if len(el):
        out.append(f"{path}: must not contain elements")
        return
    text = el.text or ""
    problem = _simple_problem(text, kind)
    if problem:
        out.append(f"{path}: {problem}")


def _simple_problem(text: str, kind: str) -> str | None:
    t = text.strip()
    if kind == "str":
        return None
    if kind == "empty":
        return "must be empty" if t else None
    if kind == "flag":
        return None if t in ("", "true", "1") else f"presence flag must be empty, not {t!r}"
    if kind == "bool":
        return None if t in ("true", "false", "1", "0") else f"{t!r} is not a boolean"
    if kind in ("int", "long"):
        return None if _INT.match(t) else f"{t!r} is not an integer"
    if kind == "double":
        try:
            float(t)
        except ValueError:
            return f"{t!r} is not a number"
        return None
    if kind == "dateTime":
        return None if _DATETIME.match(t) else f"{t!r} is not a date-time with a time zone"
    if kind == "date":
        return None if _DATE.match(t) else f"{t!r} is not a date"
    if kind.startswith("enum."):
        allowed = ENUMS[kind[5:]]
        return None if text in allowed else f"{text!r} is not one of the {kind[5:]} values"
    if kind in _SIMPLE_RE:
        return None if _SIMPLE_RE[kind].match(t) else f"{t!r} does not match its pattern"
    raise ValueError(f"unknown simple kind {kind}")


def _check_attrs(el: ET.Element, typ: str, path: str, out: list[str], is_root: bool) -> None:
    rules = ATTRS.get(typ, {})
    for name, value in el.attrib.items():
        if is_root and name.startswith("{" + XSI + "}"):
            continue
        if name not in rules:
            out.append(f"{path}: attribute {name!r} is not allowed")
            continue
        problem = _simple_problem(value, rules[name][0])
        if problem:
            out.append(f"{path}/@{name}: {problem}")
    for name, (_, required) in rules.items():
        if required and name not in el.attrib:
            out.append(f"{path}: attribute {name!r} is required")


def _past(text: str | None) -> bool:
    if not text:
        return True
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return True  # a lexical problem is reported by the structural check
    return at.tzinfo is None or at <= datetime.now(UTC)


def _business_rules(root: ET.Element) -> list[str]:
    """Rules NCMEC's server applies beyond the XSD (the ones Tutela's reports can touch)."""
    out = []
    if root.tag == "report":
        person = root.find("reporter/reportingPerson")
        if person is not None and person.find("email") is None:
            out.append("report/reporter/reportingPerson: at least one <email> is required")
        if not _past(root.findtext("incidentSummary/incidentDateTime")):
            out.append("report/incidentSummary/incidentDateTime: must be in the past")
        for ev in root.iter("ipCaptureEvent"):
            if not _past(ev.findtext("dateTime")):
                out.append("ipCaptureEvent/dateTime: must be in the past")
    else:
        relevance = root.findtext("fileRelevance")
        meme = root.find("fileAnnotations/potentialMeme") is not None
        if relevance == "Supplemental Reported" and (
            meme or root.find("industryClassification") is not None
        ):
            out.append(
                "fileDetails/fileRelevance: may not be 'Supplemental Reported' with a "
                "potential-meme annotation or an industry classification"
            )
        if root.findtext("exifViewedByEsp") in ("true", "1") and root.findtext(
            "fileViewedByEsp"
        ) not in ("true", "1"):
            out.append("fileDetails/fileViewedByEsp: must be true when exifViewedByEsp is true")
        if not _past(root.findtext("uploadedToEspTimestamp")):
            out.append("fileDetails/uploadedToEspTimestamp: must be in the past")
    return out
