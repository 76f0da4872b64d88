"""Views of one `Scan`: JSON (the `sessionfix.scan/1` contract), terminal, HTML."""
