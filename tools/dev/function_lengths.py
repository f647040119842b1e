#!/usr/bin/env python3
"""Lists the longest C++ function bodies in the given files or folders.

    tools/dev/function_lengths.py [--top N] [--over LINES] PATH...

A function is counted from the line of its signature's name to its closing
brace; lambdas count as part of the function that holds them. The parser is
a heuristic (comments and strings stripped, braces matched): good enough to
find long functions, not a C++ parser. Exits 0.
"""
import argparse
import os
import re
import sys

CONTROL = {"if", "for", "while", "switch", "catch", "do", "else", "return", "try"}
SCOPES = re.compile(r"\b(namespace|class|struct|union|enum)\b")


def strip(text):
    """Comments and string/char literals blanked; newlines kept."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif text.startswith('R"', i) and (i == 0 or not text[i - 1].isalnum()):
            m = re.match(r'R"([^(]*)\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = ")" + m.group(1) + '"'
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == "'" and i > 0 and text[i - 1].isalnum():
            out.append(c)  # a digit separator: 1'000
            i += 1
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + c + "\n" * text.count("\n", i, j))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(path):
    text = strip(open(path, encoding="utf-8", errors="replace").read())
    results = []
    # stack of ("scope" | "function" | "block", start_line, name)
    stack = []
    head_start = 0  # index where the current statement head begins
    line = 1
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\n":
            line += 1
        elif c in ";":
            head_start = i + 1
        elif c == "{":
            head = text[head_start:i]
            in_function = any(kind == "function" for kind, _, _ in stack)
            kind = "block"
            name = ""
            if not in_function:
                h = " ".join(head.split())
                if SCOPES.search(h) and "(" not in h.split("{")[0]:
                    kind = "scope"
                elif h.startswith("extern"):
                    kind = "scope"
                else:
                    m = re.search(r"([~\w:<>]+)\s*\([^;]*\)[^()]*$", h)
                    if m and m.group(1).split("::")[-1] not in CONTROL and "=" not in h.split("(")[0]:
                        kind = "function"
                        name = m.group(1)
                    elif SCOPES.search(h):
                        kind = "scope"
            # the signature's first line: count back from the brace to the
            # first non-blank character of the head
            stripped = head.lstrip()
            start_line = line - head.count("\n") + head[: len(head) - len(stripped)].count("\n")
            stack.append((kind, start_line, name))
            head_start = i + 1
        elif c == "}":
            if stack:
                kind, start_line, name = stack.pop()
                if kind == "function":
                    results.append((line - start_line + 1, name, start_line))
            head_start = i + 1
        i += 1
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--over", type=int, default=0, help="only functions longer than this")
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()
    rows = []
    for p in args.paths:
        files = [p] if os.path.isfile(p) else [
            os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs if f.endswith((".cc", ".h"))]
        for f in files:
            rows += [(n, name, f, start) for n, name, start in functions(f)]
    rows.sort(reverse=True)
    if args.over:
        rows = [r for r in rows if r[0] > args.over]
    for n, name, f, start in rows[: args.top] if not args.over else rows:
        print(f"{n:5d}  {f}:{start}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
