"""`layerscan serve`: a push gate in front of a registry (see README, "Gate at the registry")."""
