"""OpenFlow encoding, wire and session (a package: a wheel ships it)."""
