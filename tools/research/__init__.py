"""Research tools: `fetch_url` reads a web page, `web_search` asks a search provider.

Both only read: they never touch the workspace. Every failure comes back as one sentence of
text; a refused address raises ToolDenied, which the registry reports as a refusal.
"""

from tools.research.fetch import fetch_url
from tools.research.search import web_search

TOOLS = [fetch_url, web_search]
