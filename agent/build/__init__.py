"""Building images from a Dockerfile with the agent's own runtime (`clusterctl build`)."""
