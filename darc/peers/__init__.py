"""Peers DARC is compared with at the same measured cost: Sparse Structure Selection (uniform-cost gates),
random decisions with DARC's counts, the same architecture trained from scratch, and Torch-Pruning."""
