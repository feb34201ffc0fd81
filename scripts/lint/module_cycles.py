#!/usr/bin/env python3
"""Finds files of a crate that import each other in a circle.

Each `.rs` file under a crate's `src/` is a node; a `crate::a::b` or
`super::x` path in it is an edge to the file that path lands in (the
longest existing prefix: `a/b.rs`, `a/b/mod.rs`, else `a.rs` …). A parent
module declaring its children (`mod x;`) is not an edge, and neither is a
`#[cfg(test)]` module's use of its parent: only code paths count. Prints
every strongly connected group of more than one file and exits 1 if any.

Usage: module_cycles.py CRATE_DIR...
"""
import re
import sys
from pathlib import Path

PATH = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
GROUP = re.compile(r"\buse\s+(crate|super)::\{([^}]*)\}", re.S)


def strip_tests(text: str) -> str:
    """Drops `#[cfg(test)] mod … { … }` blocks (brace-matched)."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def module_of(src: Path, file: Path) -> list:
    rel = file.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def file_of(src: Path, parts: list):
    for n in range(len(parts), -1, -1):
        p = parts[:n]
        if not p:
            for root in ("lib.rs", "main.rs"):
                if (src / root).exists():
                    return src / root
            return None
        for cand in (src.joinpath(*p).with_suffix(".rs"), src.joinpath(*p, "mod.rs")):
            if cand.exists():
                return cand
    return None


def edges(src: Path, file: Path):
    text = strip_comments(strip_tests(file.read_text()))
    me = module_of(src, file)
    paths = [(m.group(1), m.group(2)) for m in PATH.finditer(text)]
    for m in GROUP.finditer(text):
        for item in m.group(2).split(","):
            item = item.strip().split(" as ")[0].split("::{")[0]
            if item:
                paths.append((m.group(1), "::" + item))
    for root, rest in paths:
        parts = [p for p in rest.split("::") if p]
        if root == "super":
            base = me[:-1] if file.name != "mod.rs" else me[:-1]
            parts = base + parts
        target = file_of(src, parts)
        if target and target != file:
            yield target


def cycles(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def main():
    failed = False
    for crate in sys.argv[1:]:
        src = Path(crate) / "src"
        files = [f for f in src.rglob("*.rs") if "bin" not in f.relative_to(src).parts]
        graph = {f: set(edges(src, f)) for f in files}
        for comp in cycles(graph):
            failed = True
            names = sorted(str(f.relative_to(src)) for f in comp)
            print(f"{crate}: files importing each other in a circle: {', '.join(names)}")
            for f in sorted(comp):
                deps = sorted(str(t.relative_to(src)) for t in graph[f] if t in comp)
                print(f"    {f.relative_to(src)} -> {', '.join(deps)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
