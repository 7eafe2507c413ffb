"""Tables, registers, cookies and flows of the 3.11 pipeline (a package, so that a non-editable install ships it)."""
