"""Check every resource and data source block in terraform/ against the providers' own schemas.

The schemas come from PyPI's prebuilt CDK Terrain bindings (`cdktn-provider-google` and friends,
installed into .venv-cdktn by scripts/install-tf-tools.sh). Each wheel carries its jsii assembly
(`_jsii/*.jsii.tgz`, a JSON description of the generated classes) with every resource's config
struct: each argument, each nested block (a struct-typed property), which are required (not
optional) and the Terraform name (the registry link in the docs ends with `#terraform_name`).
The assembly is read as data; nothing from the bindings is imported or run (jsii would need Node).

    python scripts/tf_schema_check.py [TERRAFORM_DIR]     exit 0 if clean, 1 with the problems

Found: unknown arguments, unknown (misspelt) blocks, a block given as an argument or the other
way round, missing required arguments and blocks, more than one of a single-item block.
Not checked: value types, conflicts between arguments, limits on list lengths other than the
single-item blocks (jsii does not carry them), and blocks of providers with no assembly here.
"""

from __future__ import annotations

import functools
import io
import json
import re
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv-cdktn"
# The Python package of each provider's bindings, by the Terraform provider's local name.
PACKAGES = {"google": "cdktn_provider_google", "archive": "cdktn_provider_archive", "time": "cdktn_provider_time"}
CACHE_FORMAT = 1

# Terraform's own meta-arguments and meta-blocks, valid in every resource (and data) block.
META_ARGUMENTS = {"count", "for_each", "depends_on", "provider"}
META_BLOCKS = {"lifecycle"}
RESOURCE_META_BLOCKS = {"provisioner", "connection"}

_LINK = re.compile(r"registry\.terraform\.io/providers/([\w-]+)/([\w-]+)/([\w.-]+)/docs/(resources|data-sources)/"
                   r"[\w-]+ ([\w-]+)\}")
_ANCHOR = re.compile(r"#([\w-]+) [\w]+#[\w-]+\}")


@dataclass
class Block:
    """A block's schema: its arguments and nested blocks, each required or not."""

    arguments: dict[str, bool] = field(default_factory=dict)  # name -> required
    blocks: dict[str, NestedBlock] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"arguments": self.arguments, "blocks": {k: v.as_json() for k, v in self.blocks.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Block:
        return cls(dict(data["arguments"]), {k: NestedBlock.from_json(v) for k, v in data["blocks"].items()})


@dataclass
class NestedBlock:
    required: bool
    single: bool  # at most one (a struct, not a list of structs, in the bindings)
    block: Block

    def as_json(self) -> dict[str, Any]:
        return {"required": self.required, "single": self.single, "block": self.block.as_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NestedBlock:
        return cls(data["required"], data["single"], Block.from_json(data["block"]))


@dataclass
class ProviderSchema:
    provider: str
    version: str
    resources: dict[str, Block]
    data_sources: dict[str, Block]


# -- reading the jsii assembly ------------------------------------------------------------------


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _tf_name(prop: dict[str, Any]) -> str:
    match = _ANCHOR.search((prop.get("docs") or {}).get("remarks", ""))
    return match.group(1) if match else _snake(prop["name"])


def _struct_of(type_ref: dict[str, Any], types: dict[str, Any]) -> tuple[str | None, bool]:
    """(fqn of the struct, single) if this property is a nested block, else (None, False)."""
    options = type_ref["union"]["types"] if "union" in type_ref else [type_ref]
    for option in options:
        collection = option.get("collection")
        if collection and collection.get("kind") == "array":
            fqn = collection["elementtype"].get("fqn")
            if fqn in types and types[fqn].get("datatype"):
                return fqn, False
        fqn = option.get("fqn")
        if fqn in types and types[fqn].get("datatype"):
            return fqn, True
    return None, False


def _block(fqn: str, types: dict[str, Any], depth: int = 0) -> Block:
    if depth > 20:
        raise ValueError(f"nesting too deep at {fqn}")
    out = Block()
    for prop in types[fqn].get("properties", []):
        name = _tf_name(prop)
        required = not prop.get("optional", False)
        struct, single = _struct_of(prop["type"], types)
        if struct is None:
            out.arguments[name] = required
        else:
            out.blocks[name] = NestedBlock(required, single, _block(struct, types, depth + 1))
    return out


def schema_from_assembly(assembly: dict[str, Any]) -> ProviderSchema:
    """Every resource and data source of one provider's jsii assembly."""
    types = assembly["types"]
    resources: dict[str, Block] = {}
    data_sources: dict[str, Block] = {}
    provider = version = ""
    for spec in types.values():
        if spec.get("kind") != "class":
            continue
        match = _LINK.search((spec.get("docs") or {}).get("summary", ""))
        if not match:
            continue
        _, provider, version, kind, tf_type = match.groups()
        params = (spec.get("initializer") or {}).get("parameters") or []
        config = next((p["type"].get("fqn") for p in params if p["name"] == "config"), None)
        if config not in types:
            continue
        (resources if kind == "resources" else data_sources)[tf_type] = _block(config, types)
    return ProviderSchema(provider, version, resources, data_sources)


def find_assembly(package: str, venv: Path = VENV) -> Path | None:
    """The .jsii.tgz that a bindings package installed into the venv carries, if any."""
    for path in sorted(venv.glob(f"lib/python*/site-packages/{package}/_jsii/*.jsii.tgz")):
        return path
    return None


def read_assembly(tgz: Path) -> dict[str, Any]:
    with tarfile.open(tgz) as archive:
        member = archive.getmember("package/.jsii")
        fh = archive.extractfile(member)
        assert fh is not None
        return json.load(io.TextIOWrapper(fh, encoding="utf-8"))


def load_schema(provider: str, venv: Path = VENV) -> ProviderSchema | None:
    """One provider's schema; cached beside its assembly (the google one is 125 MB of JSON)."""
    tgz = find_assembly(PACKAGES[provider], venv)
    if tgz is None:
        return None
    cache = venv / f"schema-{tgz.name}.json"
    if cache.exists() and cache.stat().st_mtime >= tgz.stat().st_mtime:
        data = json.loads(cache.read_text())
        if data.get("format") == CACHE_FORMAT:
            return ProviderSchema(
                data["provider"], data["version"],
                {k: Block.from_json(v) for k, v in data["resources"].items()},
                {k: Block.from_json(v) for k, v in data["data_sources"].items()},
            )
    schema = schema_from_assembly(read_assembly(tgz))
    cache.write_text(json.dumps({
        "format": CACHE_FORMAT, "provider": schema.provider, "version": schema.version,
        "resources": {k: v.as_json() for k, v in schema.resources.items()},
        "data_sources": {k: v.as_json() for k, v in schema.data_sources.items()},
    }))
    return schema


# -- checking the configuration -----------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    where: str  # file:resource.type.name[.block...]
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def _check_body(body: dict[str, Any], schema: Block, where: str, top_meta: set[str] | None = None) -> Iterator[Problem]:
    meta_args = META_ARGUMENTS if top_meta is not None else set()
    meta_blocks = top_meta or set()
    given_blocks: dict[str, int] = {}
    for key, value in body.items():
        if key == "__is_block__":
            continue
        is_block = isinstance(value, list) and value and all(isinstance(v, dict) and v.get("__is_block__") for v in value)
        if key == "dynamic" and isinstance(value, list) and all(isinstance(v, dict) for v in value):
            for entry in value:
                for name, dyn in entry.items():
                    if name == "__is_block__":
                        continue
                    nested = schema.blocks.get(name)
                    if nested is None:
                        yield Problem(where, f"dynamic block {name!r} is not a block of this type"
                                      + _suggest(name, schema.blocks))
                        continue
                    given_blocks[name] = given_blocks.get(name, 0) + 2  # any number: not counted
                    for content in dyn.get("content") or []:
                        yield from _check_body(content, nested.block, f"{where}.{name}")
            continue
        if is_block:
            if key in meta_blocks:
                continue
            nested = schema.blocks.get(key)
            if nested is None:
                if key in schema.arguments:
                    yield Problem(where, f"{key!r} is an argument, not a block: write `{key} = ...`")
                else:
                    yield Problem(where, f"unknown block {key!r}" + _suggest(key, schema.blocks))
                continue
            given_blocks[key] = given_blocks.get(key, 0) + len(value)
            if nested.single and len(value) > 1:
                yield Problem(where, f"block {key!r} may appear only once, found {len(value)}")
            for item in value:
                yield from _check_body(item, nested.block, f"{where}.{key}")
            continue
        if key in meta_args:
            continue
        if key in schema.arguments:
            continue
        if key in schema.blocks:
            yield Problem(where, f"{key!r} is a block, not an argument: write `{key} {{ ... }}`")
        else:
            yield Problem(where, f"unknown argument {key!r}" + _suggest(key, schema.arguments))
    for name, required in schema.arguments.items():
        if required and name not in body:
            yield Problem(where, f"missing required argument {name!r}")
    for name, nested in schema.blocks.items():
        if nested.required and name not in given_blocks:
            yield Problem(where, f"missing required block {name!r}")


def _suggest(name: str, known: Any) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass
class CheckResult:
    problems: list[Problem]
    checked: list[str]  # "resource google_x.y", one per block checked
    unchecked: list[str]  # blocks whose provider schema is not here, with the reason

    @property
    def ok(self) -> bool:
        return not self.problems


@functools.lru_cache(maxsize=64)
def _parse(text: str) -> dict[str, Any]:
    """One .tf file parsed (python-hcl2, blocks marked); cached by content, parsing is slow."""
    import hcl2
    from hcl2 import SerializationOptions

    options = SerializationOptions(with_comments=False, explicit_blocks=True, strip_string_quotes=True)
    return hcl2.loads(text, serialization_options=options)


def check_directory(tf_dir: Path, schemas: dict[str, ProviderSchema | None]) -> CheckResult:
    """Every resource and data block of every .tf file in tf_dir, against `schemas` by provider."""
    result = CheckResult([], [], [])
    for path in sorted(tf_dir.glob("*.tf")):
        doc = _parse(path.read_text())
        for kind, label in (("resource", "resource"), ("data", "data source")):
            for entry in doc.get(kind, []):
                for rtype, by_name in entry.items():
                    if rtype == "__is_block__":
                        continue
                    for name, body in by_name.items():
                        if name == "__is_block__":
                            continue
                        where = f"{path.name}: {'data.' if kind == 'data' else ''}{rtype}.{name}"
                        provider = rtype.split("_", 1)[0]
                        if provider not in schemas:
                            result.unchecked.append(f"{where} (no bindings package for provider {provider!r})")
                            continue
                        schema = schemas[provider]
                        if schema is None:
                            result.unchecked.append(f"{where} ({PACKAGES[provider]} is not installed)")
                            continue
                        table = schema.resources if kind == "resource" else schema.data_sources
                        block = table.get(rtype)
                        if block is None:
                            result.problems.append(Problem(
                                where, f"{schema.provider} {schema.version} has no {label} {rtype!r}"
                                + _suggest(rtype, table)))
                            continue
                        meta = META_BLOCKS | (RESOURCE_META_BLOCKS if kind == "resource" else set())
                        result.problems.extend(_check_body(body, block, where, top_meta=meta))
                        result.checked.append(f"{where} ({schema.provider} {schema.version})")
    return result


def load_all(venv: Path = VENV) -> dict[str, ProviderSchema | None]:
    return {name: load_schema(name, venv) for name in PACKAGES}


def main(argv: list[str]) -> int:
    tf_dir = Path(argv[0]) if argv else REPO / "terraform"
    schemas = load_all()
    for name, schema in schemas.items():
        print(f"{name}: " + (f"provider {schema.version}" if schema else f"no schema ({PACKAGES[name]} not in {VENV})"))
    result = check_directory(tf_dir, schemas)
    print(f"checked {len(result.checked)} blocks; not checked: {len(result.unchecked)}")
    for line in result.unchecked:
        print(f"  not checked: {line}")
    for problem in result.problems:
        print(f"  {problem}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
