"""skbandit: bandit policies, adaptive experiments and off-policy evaluation."""

__all__ = []
