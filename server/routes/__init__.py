"""Thin HTTP handlers, one module per resource; each exposes `routes(...)`.

Handlers decode the raw body themselves with a msgspec decoder built once
(`server.schemas.decode_body`), call the inference layer and return wire structs.
A handler that reads a JSON body names its type in ``opt={"body": Type}`` so that the
OpenAPI document can describe it (`server.routes.openapi`).
"""
