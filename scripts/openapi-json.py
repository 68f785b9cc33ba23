#!/usr/bin/env python3
"""Converts docs/openapi.yaml to JSON and writes it as a C++ source file.

Usage: openapi-json.py <openapi.yaml> <out.cc> [<out.json>]

The controller serves the result at GET /v1/openapi.json (controller/openapi.h). Refuses, with
a message naming the place, a document without `openapi: 3.1.x`, with an operation lacking an
operationId or x-shadan-roles, a duplicate operationId, or a $ref that does not resolve, so a
broken description fails the build instead of being served.
"""
import json
import sys

import yaml


def fail(message):
    sys.stderr.write("openapi-json: %s\n" % message)
    sys.exit(1)


def resolve(document, ref, where):
    if not ref.startswith("#/"):
        fail("%s: $ref %s is not local" % (where, ref))
    node = document
    for part in ref[2:].split("/"):
        if not isinstance(node, dict) or part not in node:
            fail("%s: $ref %s does not resolve" % (where, ref))
        node = node[part]


def walk_refs(document, node, where):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                resolve(document, value, where)
            else:
                walk_refs(document, value, where + "/" + str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            walk_refs(document, value, "%s/%d" % (where, index))


def check(document, source):
    if not isinstance(document, dict):
        fail("%s: not a mapping" % source)
    if not str(document.get("openapi", "")).startswith("3.1."):
        fail("%s: /openapi: must be 3.1.x" % source)
    seen = set()
    for path, item in (document.get("paths") or {}).items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "delete", "patch"):
                continue
            where = "%s: /paths/%s/%s" % (source, path, method)
            operation_id = operation.get("operationId")
            if not operation_id:
                fail(where + ": no operationId")
            if operation_id in seen:
                fail(where + ": operationId %s used twice" % operation_id)
            seen.add(operation_id)
            if "x-shadan-roles" not in operation:
                fail(where + ": no x-shadan-roles")
    walk_refs(document, document, source)


def main():
    if len(sys.argv) not in (3, 4):
        fail("usage: openapi-json.py <openapi.yaml> <out.cc> [<out.json>]")
    source = sys.argv[1]
    with open(source, encoding="utf-8") as handle:
        try:
            document = yaml.safe_load(handle)
        except yaml.YAMLError as error:
            fail("%s: %s" % (source, error))
    check(document, source)
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False, sort_keys=False)
    delimiter = "shadan_openapi"
    if (")" + delimiter + '"') in text:
        fail("%s: the document holds the raw-string delimiter" % source)
    with open(sys.argv[2], "w", encoding="utf-8") as out:
        out.write("// Generated from %s by scripts/openapi-json.py: do not edit.\n" % source)
        out.write('#include "controller/openapi.h"\n\n')
        out.write("namespace shadan::controller {\n\n")
        out.write("std::string_view openApiJson() {\n")
        out.write("  static constexpr std::string_view kDocument = R\"%s(" % delimiter)
        out.write(text)
        out.write(")%s\";\n  return kDocument;\n}\n\n" % delimiter)
        out.write("}  // namespace shadan::controller\n")
    if len(sys.argv) == 4:
        with open(sys.argv[3], "w", encoding="utf-8") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    main()
