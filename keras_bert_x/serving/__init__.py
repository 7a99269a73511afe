"""Talking to a TF Serving model exported by `export/savedmodel.py` (REST and gRPC)."""
