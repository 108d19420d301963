"""The sweep layer, and the only package that imports Ray.

space (Ray-free: parameters, Optuna distributions and samplers, checks) -> driver (Ray Tune
+ OptunaSearch) -> trainable (one trial, around `core.run`) -> progress (rows into
`results`). Importing this package imports no Ray; its driver, trainable and progress do.
"""
