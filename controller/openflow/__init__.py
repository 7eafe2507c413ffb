"""OpenFlow encoding, wire and session (a package, so that a non-editable install ships it)."""
