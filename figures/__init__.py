"""Figures and tables from experiment results on disk (no training code imported)."""
