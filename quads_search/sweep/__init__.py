"""The sweep layer, and the only package that imports Ray. Importing it imports no Ray.

  params         parameter names, Optuna distributions, a sample applied to the base config (Ray-free)
  space          a space loaded and checked before anything runs (Ray-free)
  references     trials enqueued before sampling: the uniform-bit references (Ray-free)
  samplers       the seeded Optuna sampler `search.sampler` names (Ray-free)
  search_checks  what a space may search, checked before Ray starts (Ray-free)
  seeding        the sensitivity-budgeted seeded trials (Ray-free)
  plan_report    a seeding plan as data, a table and a plot (what `quads-search sensitivity` shows; Ray-free)
  budget         hard budgets from planned costs, the redraw loop, budget.json (Ray-free)
  stopping       the early-stop rule after a stage (Ray-free)
  searcher       OptunaSearch for Ray Tune: enqueued trials first, budgets, constraints
  scheduler      Ray Tune's trial scheduler for early stopping
  driver         the Tune run: Ray start, lock, resume, signals, results
  trainable      one trial, around `core.run`; progress: rows into `results` and the console
"""
