"""FX rates from the European Central Bank: its reference rate files, read and loaded."""
