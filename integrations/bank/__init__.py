"""Bank statements: the camt.053, MT940 and CSV parsers, and the importer that books them."""
