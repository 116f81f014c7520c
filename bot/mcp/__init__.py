"""Tools from Model Context Protocol servers (PARLEY_MCP_CONFIG): config, connections, tools."""
