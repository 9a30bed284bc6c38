"""Entry points and edges: Spark session, input ports, contract enforcement, publishing."""
