"""Choosing models from finished sweeps: fronts, hypervolume and budgets (front), pictures (plots).

Ray-free: it reads `trials.parquet` through `quads_search.results`.
"""
