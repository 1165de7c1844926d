"""HTTP routes: health, query (search/answer/report), documents."""
