"""Local fakes of the two reporting services, started by the tests on 127.0.0.1.

They are strict on purpose: each enforces the documented rules (authentication, schema,
uniqueness, NCMEC's submit → upload → fileinfo → finish order), so a client that passes
here has been checked against the rules and not merely against a stub that says yes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree as ET

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMA_PATH = (
    Path(__file__).resolve().parents[2]
    / "src/tutela/evidence/schemas/dsa-statement-of-reasons.schema.json"
)


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler], state: Any) -> Iterator[str]:
    """Run ``handler`` on a free loopback port; yields the base URL; always shuts down."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _Base(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    @property
    def state(self) -> Any:
        return self.server.state  # type: ignore[attr-defined]

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# ---- DSA Transparency Database --------------------------------------------------------------


class DsaState:
    def __init__(self, token: str) -> None:
        self.token = token
        self.stored: dict[str, dict[str, Any]] = {}
        schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
        registry = Registry().with_resource(schema["$id"], Resource.from_contents(schema))
        self.bulk = Draft202012Validator(
            {"$ref": schema["$id"] + "#/$defs/statements_payload"}, registry=registry
        )


class DsaHandler(_Base):
    def do_POST(self) -> None:
        st: DsaState = self.state
        if self.path != "/api/v1/statements":
            return self._json(404, {"message": "not found"})
        if self.headers.get("Authorization") != f"Bearer {st.token}":
            return self._json(401, {"message": "Unauthenticated."})
        try:
            payload = json.loads(self._body())
        except ValueError:
            return self._json(400, {"message": "malformed JSON"})
        errors = [e.message for e in st.bulk.iter_errors(payload)]
        if errors:
            return self._json(422, {"message": "invalid", "errors": errors[:20]})
        puids = [s["puid"] for s in payload["statements"]]
        dupes = {p for p in puids if puids.count(p) > 1 or p in st.stored}
        if dupes:
            return self._json(422, {"message": "puid must be unique", "errors": sorted(dupes)})
        out = []
        for s in payload["statements"]:
            saved = dict(s, uuid=str(uuid.uuid4()))
            st.stored[s["puid"]] = saved
            out.append(saved)
        self._json(201, {"statements": out})

    def _json(self, status: int, doc: Any) -> None:
        self._send(status, json.dumps(doc).encode(), "application/json")


# ---- NCMEC CyberTipline ---------------------------------------------------------------------


class NcmecState:
    """Reports as the fake server sees them. ``checker`` is the order/enumeration check."""

    def __init__(self, username: str, password: str, checker: Any) -> None:
        self.auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.checker = checker
        self.next_id = 1000
        self.reports: dict[int, dict[str, Any]] = {}
        self.calls: list[str] = []


class NcmecHandler(_Base):
    def do_GET(self) -> None:
        if self.path.endswith("/status"):
            if not self._authorised():
                return None
            return self._response(0, "Success")
        self._response(1210, "Resource not found", status=404)

    def do_POST(self) -> None:
        st: NcmecState = self.state
        if not self._authorised():
            return None
        endpoint = self.path.rsplit("/", 1)[-1]
        st.calls.append(endpoint)
        body = self._body()
        ctype = self.headers.get("Content-Type", "")
        if endpoint == "submit":
            return self._submit(body, ctype)
        if endpoint == "upload":
            return self._upload(body, ctype)
        if endpoint == "fileinfo":
            return self._fileinfo(body, ctype)
        if endpoint in ("finish", "retract"):
            return self._close(endpoint, body)
        self._response(1210, "Resource not found", status=404)

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") != self.state.auth:
            self._response(2000, "Authentication required", status=401)
            return False
        return True

    def _xml(self, body: bytes, ctype: str, root: str) -> ET.Element | None:
        if not ctype.startswith("text/xml"):
            self._response(4000, "Invalid request: Content-Type must be text/xml", status=400)
            return None
        try:
            doc = ET.fromstring(body)
        except ET.ParseError:
            self._response(4110, "Malformed XML submittal", status=400)
            return None
        problems = self.state.checker(body) if doc.tag == root else [f"root must be <{root}>"]
        if problems:
            self._response(4100, "Validation failed: " + "; ".join(problems[:5]), status=400)
            return None
        return doc

    def _submit(self, body: bytes, ctype: str) -> None:
        if self._xml(body, ctype, "report") is None:
            return
        st: NcmecState = self.state
        st.next_id += 1
        st.reports[st.next_id] = {"state": "open", "files": {}, "xml": body}
        self._response(0, "Success", report_id=st.next_id)

    def _report(self, raw: str | None) -> dict[str, Any] | None:
        try:
            rep = self.state.reports.get(int(raw or ""))
        except ValueError:
            rep = None
        if rep is None:
            self._response(5001, "Report does not exist", status=400)
            return None
        if rep["state"] == "finished":
            self._response(5102, "Report already finished", status=400)
            return None
        if rep["state"] == "retracted":
            self._response(5101, "Report already retracted", status=400)
            return None
        return rep

    def _upload(self, body: bytes, ctype: str) -> None:
        if not ctype.startswith("multipart/form-data"):
            return self._response(4200, "Malformed file submittal", status=400)
        msg = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + body)
        fields: dict[str, Any] = {}
        for part in msg.iter_parts():
            fields[part.get_param("name", header="content-disposition")] = part
        rep = self._report(fields["id"].get_content() if "id" in fields else None)
        if rep is None:
            return None
        if "file" not in fields:
            return self._response(4200, "Malformed file submittal", status=400)
        data = fields["file"].get_payload(decode=True)
        file_id = uuid.uuid4().hex
        rep["files"][file_id] = {"bytes": data, "details": None}
        self._response(
            0,
            "Success",
            report_id=None,
            file_id=file_id,
            md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        )

    def _fileinfo(self, body: bytes, ctype: str) -> None:
        doc = self._xml(body, ctype, "fileDetails")
        if doc is None:
            return None
        rep = self._report(doc.findtext("reportId"))
        if rep is None:
            return None
        f = rep["files"].get(doc.findtext("fileId"))
        if f is None:
            return self._response(5002, "File does not exist", status=400)
        if f["details"] is not None:
            return self._response(4100, "fileinfo already given for this file", status=400)
        f["details"] = body
        self._response(0, "Success")

    def _close(self, endpoint: str, body: bytes) -> None:
        form = parse_qs(body.decode())
        rep = self._report((form.get("id") or [None])[0])
        if rep is None:
            return None
        report_id = int(form["id"][0])
        if endpoint == "retract":
            rep["state"] = "retracted"
            return self._response(0, "Success", report_id=report_id)
        rep["state"] = "finished"
        files = "".join(f"<fileId>{fid}</fileId>" for fid in rep["files"])
        xml = (
            f"<reportDoneResponse><responseCode>0</responseCode><reportId>{report_id}"
            f"</reportId><files>{files}</files></reportDoneResponse>"
        )
        self._send(200, xml.encode(), "text/xml; charset=utf-8")

    def _response(
        self,
        code: int,
        text: str,
        *,
        status: int = 200,
        report_id: int | None = None,
        file_id: str | None = None,
        md5: str | None = None,
    ) -> None:
        root = ET.Element("reportResponse")
        ET.SubElement(root, "responseCode").text = str(code)
        ET.SubElement(root, "responseDescription").text = text
        if report_id is not None:
            ET.SubElement(root, "reportId").text = str(report_id)
        if file_id is not None:
            ET.SubElement(root, "fileId").text = file_id
            ET.SubElement(root, "hash").text = md5
        self._send(status, ET.tostring(root, encoding="utf-8"), "text/xml; charset=utf-8")
