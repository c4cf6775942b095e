"""Synthetic reporting years: registry subset, cumulative ord/ide files, labelled faults."""
