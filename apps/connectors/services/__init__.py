"""Write services of the store connectors (connections, inbound deliveries, the platforms' mappings, pushes)."""
