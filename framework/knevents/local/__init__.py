"""`knevents run`: every function of a folder on one machine, with an embedded nats-server."""
