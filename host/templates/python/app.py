"""{{name}}: a Sundial action plugin in Python.

Build it with `sundial plugin build`, try it with
`sundial plugin run build/{{name}}.wasm --params '{"name": "Ada"}'`.
"""

from sundial import InvalidParams, action, log


@action
def run(params: dict, ctx) -> dict:
    name = params.get("name", "world")
    if not isinstance(name, str) or not name:
        raise InvalidParams("params.name must be a non-empty string")
    log.info(f"greeting {name} (run {ctx.run_id}, attempt {ctx.attempt})")
    return {"greeting": f"hello, {name}"}
