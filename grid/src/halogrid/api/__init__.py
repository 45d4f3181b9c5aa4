"""HTTP routers: the Halo API subset (`oauth`, `/v1`, `/v2`) and the agent protocol."""
