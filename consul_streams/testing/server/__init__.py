"""The dev agent's HTTP server: the wire helpers (``wire``) and the request dispatcher
(``dispatch``: routing, path checks, ACLs, gzip, the connection cap)."""
