"""Tables, registers, cookies and flows of the 3.11 pipeline (a package: a wheel ships it)."""
