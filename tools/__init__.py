"""Stand-alone tools run as ``python -m tools.<name>`` (tools/stats.py) or as scripts (tools/musicnn_reference.py)."""
