"""The theory of DARC (a reconstruction): Rademacher bounds for gated models, derived and checked.

Modules (import them directly; this package imports nothing, and never imports ``darc``):
``bounds`` (closed forms, sympy and numeric), ``gates`` (gate sets), ``empirical`` (Rademacher
complexities on synthetic data), ``generalisation`` (the l1-versus-box gap experiment),
``experiments`` (tidy tables), ``plots``, ``outputs`` (CSV, figures, provenance), ``config``.
Derivations: ``notebooks/01``-``04``.
"""
