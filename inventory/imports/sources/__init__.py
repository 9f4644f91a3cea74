"""Discovery sources: one parser module per provider export, `kinds` naming them, `sync` applying any of them."""
