"""Installing the OpenTelemetry SDK for the CLI, when the user asked for it (`shunter[otel]` and
an OTLP endpoint in the standard OTEL_* variables). The spans themselves are in
runtime/telemetry.py and need only the API."""

from __future__ import annotations

import os
import sys
from typing import Any

from opentelemetry import trace


def setup_from_env(env: dict[str, str] | None = None) -> Any:
    """Install an SDK TracerProvider exporting over OTLP/HTTP when an OTLP endpoint is set in the
    standard variables (the exporter reads OTEL_EXPORTER_OTLP_* itself). Returns the provider
    (call .shutdown() to flush) or None. Without the SDK it says how to get it, once."""
    env = dict(os.environ) if env is None else env
    wanted = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not wanted or env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    if env.get("OTEL_TRACES_EXPORTER", "otlp") not in ("otlp", ""):
        return None  # another exporter was asked for: leave the setup to the user's own tooling
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return None  # a provider is installed already (the user's, or ours from an earlier command)
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        sys.stderr.write(
            "shunter: an OTLP endpoint is set but the OpenTelemetry SDK is not installed, so no spans "
            "are exported; install it with: pip install 'shunter[otel]'\n"
        )
        return None
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "shunter"}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider
