"""OpenCTS domain code: no Chalice imports here; AWS access goes through adapters."""
