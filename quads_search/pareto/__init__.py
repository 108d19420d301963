"""Choosing models from finished sweeps; Ray-free and torch-free.

  front    non-dominated sets, hypervolume, selection within budgets (results.load_trials reads them)
  table    ratios and drops against the teacher, the pre-tuned student and the fp32 trial
  cards    a model card beside each chosen model
  plots    pareto.png; report: the self-contained pareto.html
  analysis a results folder analysed as `quads-search pareto` does (front, selection, report, export), as an API
"""
