"""Role home pages: what each person should do next. A composition above both apps (like `operations`): it reads
inventory and approvals; neither imports it."""
