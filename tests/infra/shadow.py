"""A provider-free "shadow" of a Terraform configuration, so that Terraform itself can evaluate it offline.

The google provider cannot be downloaded here, so `terraform validate` / `plan` of infra/ cannot run. Most
mistakes that stop a first plan are Terraform's own, though: a variable validation, a local, a `for_each`
over the wrong type, a module argument that does not convert to the module variable's type, a template that
`templatefile` cannot render. The shadow keeps all of that and drops only what needs the provider:

- variables, locals and outputs are kept as they are;
- every `resource "TYPE" "NAME"` becomes `resource "terraform_data" "TYPE__NAME"` with the same `for_each` /
  `count` and, as its `input`, an object of every argument and nested block of the original, so each
  expression (each.key, templatefile, jsonencode...) is evaluated per instance;
- what only the provider knows (an attribute of a resource or data source) becomes an unknown value, as it is
  in a real plan before apply: `local.shadow_unknown`, of unknown type;
- module calls point at the shadows of their modules; `import`, `provider`, `terraform` and meta-arguments
  that only order the work (depends_on, lifecycle, provisioners) are left out.

`terraform init -backend=false` + `terraform plan` of the shadow then needs no provider at all (terraform_data
is built into Terraform).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import hcl2

UNKNOWN = "local.shadow_unknown"
# Terraform's own namespaces: references through them are kept as they are.
KEEP = {"var", "local", "each", "count", "path", "module", "terraform", "self", "terraform_data"}
# Meta-arguments and blocks a terraform_data stand-in does not take (ordering, provider, lifecycle).
DROPPED_ARGUMENTS = {"depends_on", "provider", "providers", "lifecycle", "provisioner", "connection"}
BLOCK = {"__is_block__": True}  # python-hcl2 writes a dict marked so as a block, not as an object value
REFERENCE = re.compile(r"(?<![\w.\"'-])(data\.)?([a-z][a-z0-9]*_[a-z0-9_]+)\.([a-zA-Z_][\w-]*)\b")


def unquote(value):
    return value[1:-1] if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"' else value


def _code_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of an HCL expression that are code, not the literal parts of quoted strings: the
    text outside quotes and the ${...} interpolations inside them (nested to any depth)."""
    spans, stack, start, i = [], [], 0, 0  # stack: "string", "interpolation" or "brace"
    while i < len(text):
        c = text[i]
        if stack and stack[-1] == "string":
            if c == "\\":
                i += 2
                continue
            if text.startswith("${", i):
                stack.append("interpolation")
                i += 2
                start = i
                continue
            if c == '"':
                stack.pop()
                start = i + 1
        elif c == '"':
            spans.append((start, i))
            stack.append("string")
        elif c == "{":
            stack.append("brace")
        elif c == "}" and stack:
            if stack.pop() == "interpolation":
                spans.append((start, i))
        i += 1
    if not stack or stack[-1] != "string":
        spans.append((start, len(text)))
    return [(a, b) for a, b in spans if b > a]


def substitute(expression: str, collection: bool = False) -> str:
    """Replaces references to resources and data sources in an HCL expression: by the terraform_data stand-in
    when the whole resource is used as a collection (`for_each = google_x.this`), else by an unknown value."""

    def replace(match: re.Match) -> str:
        data, kind, name = match.groups()
        if not data and kind in KEEP:
            return match.group(0)
        if collection and not data:
            return f"terraform_data.{kind}__{name}"
        return UNKNOWN

    out, last = [], 0
    for start, end in _code_spans(expression):
        out.append(expression[last:start])
        out.append(REFERENCE.sub(replace, expression[start:end]))
        last = end
    out.append(expression[last:])
    return "".join(out)


def _rewrite(value, collection: bool = False):
    """python-hcl2 values with every expression string passed through `substitute`."""
    if isinstance(value, str):
        return substitute(value, collection)
    if isinstance(value, list):
        return [_rewrite(item) for item in value]
    if isinstance(value, dict):
        return {key: _rewrite(item) for key, item in value.items()}
    return value


def _as_value(body, block: bool = True):
    """A resource body (arguments and nested blocks) as one HCL object value for terraform_data's input.
    Nested blocks (lists of dicts marked __is_block__) become lists of objects; map values stay as they are."""
    if isinstance(body, list):
        return [_as_value(item, isinstance(item, dict) and bool(item.get("__is_block__"))) for item in body]
    if not isinstance(body, dict) or not block:
        return body
    out = {}
    for key, value in body.items():
        if key.startswith("__") or key in DROPPED_ARGUMENTS or key in ("for_each", "count"):
            continue
        if key == "dynamic":  # dynamic blocks refer to their iterator: not evaluated by the shadow
            continue
        out[key] = _as_value(value, block=False) if isinstance(value, dict) else _as_value(value)
    return out


def _blocks(parsed: dict, kind: str):
    for entry in parsed.get(kind, []):
        yield from entry.items()


def shadow_module(source: Path, target: Path, module_map: dict[Path, Path]) -> None:
    """Writes the shadow of the module in `source` (its .tf files) into `target`, next to a copy of its other
    files (templates); `module_map` maps each module directory to its shadow, for the module calls."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.tf", ".terraform*", "modules", "examples"))
    parsed = [hcl2.load(path.open()) for path in sorted(source.glob("*.tf"))]
    out: dict[str, list] = {"variable": [], "locals": [], "resource": [], "module": [], "output": []}
    for tf in parsed:
        out["variable"] += tf.get("variable", [])
        for block in tf.get("locals", []):
            out["locals"].append({**_rewrite({k: v for k, v in block.items() if not k.startswith("__")}), **BLOCK})
        for kind, named in _blocks(tf, "resource"):
            for name, body in named.items():
                stand_in = {}
                for meta in ("for_each", "count"):
                    if meta in body:
                        stand_in[meta] = _rewrite(body[meta], collection=True)
                stand_in["input"] = _rewrite(_as_value(body))
                stand_in.update(BLOCK)
                out["resource"].append({'"terraform_data"': {f'"{unquote(kind)}__{unquote(name)}"': stand_in}})
        for name, body in _blocks(tf, "module"):
            call = {k: v for k, v in body.items() if not k.startswith("__") and k not in DROPPED_ARGUMENTS}
            child = (source / unquote(call["source"])).resolve()
            call = {k: _rewrite(v, collection=k in ("for_each", "count")) for k, v in call.items() if k != "source"}
            relative = Path("..") / module_map[child].relative_to(target.parent) if child in module_map else None
            call["source"] = f'"./{relative.as_posix()}"' if relative else f'"{module_map[child]}"'
            out["module"].append({name: {**call, **BLOCK}})
        for name, body in _blocks(tf, "output"):
            out["output"].append(
                {name: {**_rewrite({k: v for k, v in body.items() if not k.startswith("__")}), **BLOCK}}
            )
    text = hcl2.dumps({kind: blocks for kind, blocks in out.items() if blocks})
    if UNKNOWN in text:
        # jsondecode of a value known only after apply: unknown, of unknown type, like a provider attribute.
        text += (
            '\nresource "terraform_data" "shadow_unknown" {\n  input = "unknown until apply"\n}\n\n'
            "locals {\n  shadow_unknown = jsondecode(terraform_data.shadow_unknown.id)\n}\n"
        )
    (target / "shadow.tf").write_text(text)


def shadow_configuration(root: Path, target: Path) -> Path:
    """The shadow of the root module `root` and of every local module it calls (modules/*), under `target`.
    Returns the shadow root directory."""
    modules = sorted(p for p in (root / "modules").iterdir() if p.is_dir()) if (root / "modules").is_dir() else []
    module_map = {m.resolve(): target / "modules" / m.name for m in modules}
    (target / "modules").mkdir(parents=True)
    for module in modules:
        shadow_module(module, module_map[module.resolve()], module_map)
    shadow_module(root, target / "root", module_map)
    return target / "root"
