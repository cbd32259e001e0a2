"""The per-site daemon (soapqueue in "The IceProd Framework"): claims tasks and runs pilots
through a plugin."""
