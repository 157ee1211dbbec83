"""The referee: instruments that score agents and may read hidden fields; agents never import it."""
