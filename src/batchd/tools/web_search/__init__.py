"""Web search (`web_search_20250305` and later), run by batchd through a configured provider."""
