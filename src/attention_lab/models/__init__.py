"""Model zoo: bundled aliases, hub ids and local folders behind one loader."""
