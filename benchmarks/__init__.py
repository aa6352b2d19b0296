"""asv benchmarks of fieldbench (docs/benchmarks.md): exact solvers, dataset pipeline, learned baselines.

Every module imports ``benchmarks._env`` first: it pins thread counts before JAX or NumPy load.
"""
