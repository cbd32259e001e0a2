"""The per-site daemon (the seeds' soapqueue): claims tasks and runs pilots through a plugin."""
