"""tapas-opt: thermal- and power-aware planning for GPU datacenters running LLM inference."""

__version__ = "0.1.0"
