"""The theory of DARC (a reconstruction): Rademacher bounds for gated models, derived and checked.

The bounds cover simplified classes (fixed candidate features or one hidden layer, norm-constrained
weights), not the full DARC networks. Modules (import them directly; this package imports nothing,
and never imports ``darc``): ``bounds`` (closed forms, sympy and numeric, and known bounds beside
ours), ``gates`` (gate sets), ``empirical`` (Rademacher complexities on synthetic data, the exact
planar supremum), ``tightness`` (certified constructions against every bound), ``coverage``
(repeated-sample coverage of the confidence term), ``checks`` (does a row refute its bound?),
``fits`` (rates and growth), ``generalisation`` (the l1-versus-box gap experiment, a non-vacuous
example), ``experiments`` (tidy tables), ``plots``, ``outputs`` (CSV, figures, provenance),
``notebook`` (runs the derivations), ``config``. What the data can refute: ``docs/theory.md``.
Derivations: ``notebooks/01``-``04`` (jupytext percent-format sources).
"""
