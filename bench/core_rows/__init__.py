"""Rows of bench/core.py: one module per group of families (see core.py)."""
