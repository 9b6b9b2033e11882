"""OTLP/HTTP ingestion: `/v1/metrics`, `/v1/logs` and `/v1/traces` in protobuf and JSON.

codec.py decodes requests and encodes answers with the official `opentelemetry-proto`
messages, mapping.py turns them into the service's own points, routes.py serves them.
"""
