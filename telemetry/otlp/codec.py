"""OTLP messages on the wire: requests in, export responses and `google.rpc.Status` out.

OTLP JSON differs from protobuf's canonical JSON in one way that matters here: trace and span
ids are hex strings, not base64 (OTLP specification, "JSON Protobuf Encoding"). They are
rewritten to base64 before parsing, so `json_format` does the rest, including 64-bit integers
sent as decimal strings and enums sent as numbers.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from service.problems import Problem
from telemetry.ingest_formats import PROTOBUF, json_failure

_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})*")
_ID_FIELDS = frozenset(
    {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}
)

# HTTP status -> gRPC status code for the Status body (google/rpc/code.proto).
_GRPC_CODES = {400: 3, 413: 3, 415: 3, 422: 3, 429: 8, 503: 14}
_GRPC_INTERNAL = 13


@dataclass(frozen=True)
class Signal:
    """One OTLP signal: its request and response messages and what a rejection counts."""

    name: str
    request: type[Message]
    response: type[Message]
    rejected_field: str


METRICS = Signal(
    "metrics",
    metrics_service_pb2.ExportMetricsServiceRequest,
    metrics_service_pb2.ExportMetricsServiceResponse,
    "rejected_data_points",
)
TRACES = Signal(
    "traces",
    trace_service_pb2.ExportTraceServiceRequest,
    trace_service_pb2.ExportTraceServiceResponse,
    "rejected_spans",
)
LOGS = Signal(
    "logs",
    logs_service_pb2.ExportLogsServiceRequest,
    logs_service_pb2.ExportLogsServiceResponse,
    "rejected_log_records",
)


def decode(signal: Signal, body: bytes, wire: str) -> Any:
    """The request message; 400 when the body is not one."""
    message = signal.request()
    if wire == PROTOBUF:
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise Problem(400, f"The body is not an OTLP {signal.name} protobuf: {exc}.") from exc
        return message

    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        reason = json_failure(exc)
        raise Problem(
            400, f"The body is not valid JSON: {reason}.", title="Malformed JSON"
        ) from exc
    if not isinstance(document, dict):
        raise Problem(400, f"An OTLP {signal.name} JSON body is an object.")

    try:
        _ids_to_base64(document)
        # Receivers must ignore fields they do not know (OTLP specification, "JSON Protobuf
        # Encoding"), so a newer sender's request still decodes.
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except RecursionError as exc:
        raise Problem(
            400, f"The body is not an OTLP {signal.name} request: it is nested too deeply."
        ) from exc
    except json_format.ParseError as exc:
        raise Problem(400, f"The body is not an OTLP {signal.name} request: {exc}.") from exc
    return message


def encode_response(signal: Signal, rejected: int, error_message: str, wire: str) -> bytes:
    """The export response; partial success only when something was rejected."""
    response = signal.response()
    if rejected:
        setattr(response.partial_success, signal.rejected_field, rejected)
        response.partial_success.error_message = error_message
    return _encode(response, wire)


def encode_status(problem: Problem, wire: str) -> bytes:
    """A failed export as the `google.rpc.Status` OTLP/HTTP prescribes for 4xx and 5xx."""
    status = status_pb2.Status(
        code=_GRPC_CODES.get(problem.status, _GRPC_INTERNAL), message=problem.detail
    )
    if wire == PROTOBUF:
        return status.SerializeToString()

    # JSON callers get the Status fields and, beside them, the problem details every other
    # error of this service carries; an OTLP client ignores the fields it does not know.
    document = json_format.MessageToDict(status)
    document.update(problem.body())
    return json.dumps(document).encode()


def _encode(message: Message, wire: str) -> bytes:
    if wire == PROTOBUF:
        return message.SerializeToString()
    return json_format.MessageToJson(message, indent=None).encode()


def _ids_to_base64(node: Any) -> None:
    """Rewrite every hex trace or span id in the document to base64, in place."""
    if isinstance(node, list):
        for item in node:
            _ids_to_base64(item)
        return
    if not isinstance(node, dict):
        return

    for key, value in node.items():
        if key in _ID_FIELDS and isinstance(value, str):
            node[key] = _hex_to_base64(key, value)
        elif isinstance(value, dict | list):
            _ids_to_base64(value)


def _hex_to_base64(field: str, value: str) -> str:
    # bytes.fromhex also skips whitespace between pairs; an id is hex digits alone.
    if _HEX.fullmatch(value) is None:
        raise Problem(400, f"`{field}` must be a hex string, not {value[:40]!r}.")
    return base64.b64encode(bytes.fromhex(value)).decode()
