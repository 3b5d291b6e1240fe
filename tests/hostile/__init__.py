"""Small stdlib HTTP servers that misbehave on purpose (oversized, dripping, spliced, redirecting...)."""
