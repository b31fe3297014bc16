"""Converters from public API catalogues (OpenAPI directory, Google discovery, Home Assistant) to tools,
used by scripts/convert_catalogues.py. Not part of the `needle` package: build-time only."""
