#!/usr/bin/env python3
"""Checks that each target's dependencies in Package.swift equal the modules its sources import.

    python3 tools/check_imports.py        # from the repository root; `make lint` runs it

A target that imports a module it does not declare builds only by luck (the module is
reachable through another dependency); a declared dependency nobody imports is a layering
fact that is not true. Toolchain modules (Foundation, Glibc, XCTest …) are not targets and
are ignored. Exit status 1 and one line per mismatch when they differ.
"""
import os
import re
import sys

TOOLCHAIN = {"Foundation", "FoundationEssentials", "Glibc", "Darwin", "Dispatch", "XCTest",
             "Testing", "Synchronization", "PackageDescription"}

DEPENDENCIES = re.compile(r'dependencies:\s*\[([^\]]*)\]')
IMPORT = re.compile(r'^\s*(?:@testable\s+)?import\s+(?:(?:struct|class|enum|func|protocol|typealias|var|let)\s+)?([A-Za-z_][A-Za-z0-9_]*)', re.M)


def targets(package_text):
    """(name, folder, declared dependencies) for every target in Package.swift."""
    found = []
    for call in re.finditer(r'\.(target|executableTarget|testTarget|systemLibrary)\((.*?)\)(?=,\s*\n|\s*\n\s*\])',
                            package_text, re.S):
        kind, body = call.group(1), call.group(2)
        name = re.search(r'name:\s*"([^"]+)"', body)
        if not name:
            continue
        path = re.search(r'path:\s*"([^"]+)"', body)
        deps = DEPENDENCIES.search(body)
        declared = set(re.findall(r'"([^"]+)"', deps.group(1))) if deps else set()
        folder = path.group(1) if path else os.path.join("Tests" if kind == "testTarget" else "Sources", name.group(1))
        found.append((name.group(1), folder, declared, kind))
    return found


def imports(folder):
    modules = set()
    for root, _, files in os.walk(folder):
        for file in files:
            if file.endswith(".swift"):
                with open(os.path.join(root, file), encoding="utf-8") as handle:
                    modules.update(IMPORT.findall(handle.read()))
    return modules - TOOLCHAIN


def main():
    with open("Package.swift", encoding="utf-8") as handle:
        package = handle.read()
    problems = []
    for name, folder, declared, kind in targets(package):
        if kind == "systemLibrary":
            continue
        used = imports(folder)
        for module in sorted(used - declared):
            problems.append(f"Package.swift: target {name} imports {module} but does not declare it")
        for module in sorted(declared - used):
            problems.append(f"Package.swift: target {name} declares {module} but never imports it")
    for line in problems:
        print(line)
    if not problems:
        print("check_imports: every target's dependencies equal its imports")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
