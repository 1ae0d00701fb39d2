#!/usr/bin/env python3
"""Replays HTTP/1.1 request framing cases, as raw bytes, against a live listener.

Two sources of cases: the strict-mode request cases of llhttp's test corpus (Markdown files read
at run time, see PROVENANCE.md next to them), and our own request-smuggling payloads
(SMUGGLING below). Each case goes over a fresh TCP connection; the answers are read until the
server closes or goes quiet, and compared with what a strict parser does with the same bytes:

  accept K      llhttp parses K whole requests: exactly K answers, none a framing refusal
                (400, 413, 414, 431, 501, 505); 404/405/401 are fine, our routes are few.
  reject K      K requests parse, then the parser errors: K answers, then either one refusal
                and a close, or a close without answering. A connection left open fails.
  upgrade K     K requests parse, then llhttp hands the connection over (CONNECT, Upgrade, the
                HTTP/2 preface). We never upgrade: K answers, what follows is not HTTP.
  truncated K   (request-finish cases: we half-close after sending) K answers, then a close;
                only a refusal may follow.

Skipped: llhttp's lenient types (they accept only with a leniency flag on; each has a strict twin
that counts), skipBody cases (llhttp's callback skipped the body, a server must read it), and the
OUT_OF_SCOPE list below.

Prints a table and a totals line; exits 1 on any mismatch, 2 on a usage or corpus error.
Python 3 standard library only.
"""

import argparse
import concurrent.futures
import json
import os
import re
import socket
import sys
import time
from pathlib import Path

# Answers that refuse a request.
REFUSALS = {400, 413, 414, 431, 501, 505}
# llhttp error codes that mean "hand the connection over", not "reject".
UPGRADE_CODES = {22, 23}

# Strict-mode cases llhttp accepts that the server refuses on purpose; counted as skipped, with
# the reason. llhttp also parses RTSP, Icecast (ICE/1.0) and HTTP/0.9.
OUT_OF_SCOPE = {
    ("method.md", "SOURCE request with ICE"): "ICE/1.0 is not HTTP: the server refuses it",
    ("method.md", "OPTIONS request with RTSP"): "RTSP/1.0 is not HTTP: the server refuses it",
    ("method.md", "ANNOUNCE request with RTSP"): "RTSP/1.0 is not HTTP: the server refuses it",
    ("sample.md", "No HTTP version"): "HTTP/0.9 simple request: the server speaks HTTP/1.x only",
    # llhttp frames these by their final chunked coding; we decode no other coding and refuse
    # them (400 and close, as tests/integration/listener_test.cpp requires).
    ("transfer-encoding.md", "POST with `chunked` as last transfer-encoding"):
        "coding before chunked (deflate): the server decodes none and refuses it",
    ("transfer-encoding.md", "POST with `chunked` as last transfer-encoding (multiple headers)"):
        "coding before chunked (deflate): the server decodes none and refuses it",
}


class Case:
    def __init__(self, source, name, data, expected, count=0, skip=None, half_close=False):
        self.source = source
        self.name = name
        self.data = data
        self.expected = expected  # "accept", "reject", "upgrade", "truncated" or "skip"
        self.count = count  # requests answered before the expected end
        self.skip = skip
        self.half_close = half_close

    def expectation(self):
        if self.expected == "skip":
            return "skip"
        return "%s %d" % (self.expected, self.count)


# ---------------------------------------------------------------------------------------------
# llhttp's Markdown corpus

HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
META = re.compile(r"^\s*<!--\s*meta=(.*?)\s*-->\s*$")
HEX_ESCAPE = re.compile(r"\\x([0-9a-fA-F]+)")
OCTAL_ESCAPE = re.compile(r"\\([0-7]{1,3})")


def decode_http_block(lines):
    """The bytes a ```http block stands for.

    Lines are joined with CRLF and the last line gets no terminator (upstream strips one trailing
    newline, then normalises). PROVENANCE.md says the last line ends with CRLF too, but the logs
    disagree: pipelining.md's third body is logged as "CCCC", 4 of its 5 bytes, and "Chunk
    extensions" ends at the last-chunk header without completing, which an extra CRLF would
    change. With this rule every offset in every log fits the input.
    """
    text = ""
    for index, line in enumerate(lines):
        if line.endswith("\\"):
            text += line[:-1]  # a continuation: no terminator
        elif index + 1 < len(lines):
            text += line + "\r\n"
        else:
            text += line
    for escape, char in (("\\r", "\r"), ("\\n", "\n"), ("\\t", "\t"), ("\\f", "\f")):
        text = text.replace(escape, char)
    text = HEX_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    text = OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), text)
    return text.encode("utf-8")


def expectation_from_log(lines):
    """(kind, count, finish) from a ```log block: the number of whole messages, and how it ends."""
    complete = sum(1 for line in lines if re.match(r"^off=\d+ message complete$", line))
    error = None
    finish = None
    for line in lines:
        match = re.match(r"^off=\d+ error code=(\d+) ", line)
        if match:
            error = int(match.group(1))
        match = re.match(r"^off=NULL finish=(\d+)$", line)
        if match:
            finish = int(match.group(1))
    if error is None:
        return "accept", complete, finish
    if error in UPGRADE_CODES:
        return "upgrade", complete, finish
    return "reject", complete, finish


def parse_corpus_file(path):
    """Every case of one llhttp Markdown file, in file order."""
    source = path.name
    cases = []
    heading = ""
    meta = None
    fence = None  # "http", "log" or another info string while inside a fence
    block = []
    http_lines = None
    previous = ""
    seen = {}
    for raw in path.read_text(encoding="utf-8").split("\n"):
        line = raw.rstrip("\r")
        if fence is not None:
            if line.strip() == "```":
                if fence == "http":
                    http_lines = block
                elif fence == "log" and http_lines is not None:
                    cases.append(make_corpus_case(source, heading, meta, http_lines, block, seen))
                    http_lines = None
                    meta = None
                fence = None
                block = []
            else:
                block.append(line)
            continue
        if line.startswith("```"):
            fence = line[3:].strip()
            block = []
        elif HEADING.match(line):
            heading = HEADING.match(line).group(1)
        elif re.match(r"^(=+|-+)\s*$", line) and previous.strip():
            heading = previous.strip()  # setext heading
        elif META.match(line):
            meta = json.loads(META.match(line).group(1))
        previous = line
    return cases


def make_corpus_case(source, heading, meta, http_lines, log_lines, seen):
    name = heading or "(no heading)"
    seen[name] = seen.get(name, 0) + 1
    if seen[name] > 1:
        name = "%s #%d" % (name, seen[name])
    kind = (meta or {}).get("type", "request")
    data = decode_http_block(http_lines)
    expected, count, finish = expectation_from_log(log_lines)
    if kind.startswith("request-lenient"):
        return Case(source, name, data, "skip", skip="lenient type %s" % kind)
    if kind == "request-finish":
        if finish is None:
            raise ValueError("%s: %s: request-finish without finish=" % (source, name))
        return Case(source, name, data, "accept" if finish == 0 else "truncated", count,
                    half_close=True)
    if kind != "request":
        return Case(source, name, data, "skip", skip="not a request case (%s)" % kind)
    if (meta or {}).get("skipBody"):
        return Case(source, name, data, "skip",
                    skip="skipBody: llhttp's callback skipped the body; a server reads it")
    reason = OUT_OF_SCOPE.get((source, name))
    if reason:
        return Case(source, name, data, "skip", skip=reason)
    return Case(source, name, data, expected, count)


def load_corpus(directory):
    files = sorted(directory.glob("*.md"))
    if not files:
        raise FileNotFoundError("no *.md files in %s" % directory)
    cases = []
    for path in files:
        cases.extend(parse_corpus_file(path))
    return cases


def find_vectors(explicit):
    """The llhttp folder: --vectors, $ARCHIVER_HTTP_VECTORS, <source>/../shared/vectors/http,
    /work/shared/vectors/http (each names the folder holding llhttp/)."""
    source_dir = Path(__file__).resolve().parent.parent.parent
    candidates = [explicit, os.environ.get("ARCHIVER_HTTP_VECTORS"),
                  source_dir.parent / "shared" / "vectors" / "http", "/work/shared/vectors/http"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "llhttp").is_dir():
            return Path(candidate) / "llhttp"
    raise FileNotFoundError("llhttp vectors not found (set ARCHIVER_HTTP_VECTORS)")


# ---------------------------------------------------------------------------------------------
# Our own request-smuggling payloads: (name, expected, count, bytes). The expectations are what
# llhttp's strict request mode does with the same bytes, unless the name says otherwise.

def post(headers, body=b"", version=b"1.1"):
    return b"POST / HTTP/" + version + b"\r\nHost: x\r\n" + headers + b"\r\n" + body


CHUNKED = b"Transfer-Encoding: chunked\r\n"
SMUGGLING = [
    # Content-Length together with Transfer-Encoding
    ("CL then TE", "reject", 0, post(b"Content-Length: 5\r\n" + CHUNKED, b"0\r\n\r\n")),
    ("TE then CL", "reject", 0, post(CHUNKED + b"Content-Length: 5\r\n", b"0\r\n\r\n")),
    ("CL 0 with TE", "reject", 0, post(b"Content-Length: 0\r\n" + CHUNKED, b"0\r\n\r\n")),
    # Duplicate or malformed Content-Length
    ("CL twice, equal", "reject", 0,
     post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello")),
    ("CL twice, differing", "reject", 0,
     post(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!")),
    ("CL +5", "reject", 0, post(b"Content-Length: +5\r\n", b"hello")),
    ("CL -5", "reject", 0, post(b"Content-Length: -5\r\n", b"hello")),
    ("CL 0x5", "reject", 0, post(b"Content-Length: 0x5\r\n", b"hello")),
    ("CL list 5, 5", "reject", 0, post(b"Content-Length: 5, 5\r\n", b"hello")),
    ("CL 5 5", "reject", 0, post(b"Content-Length: 5 5\r\n", b"hello")),
    ("CL empty", "reject", 0, post(b"Content-Length:\r\n", b"")),
    ("CL blank", "reject", 0, post(b"Content-Length:  \r\n", b"")),
    ("CL huge (overflows 64 bits)", "reject", 0,
     post(b"Content-Length: 99999999999999999999999\r\n", b"hello")),
    ("CL 2^64", "reject", 0, post(b"Content-Length: 18446744073709551616\r\n", b"hello")),
    ("CL 5.0", "reject", 0, post(b"Content-Length: 5.0\r\n", b"hello")),
    ("CL with trailing OWS", "accept", 1, post(b"Content-Length: 5 \r\n", b"hello")),
    ("CL with leading tab", "accept", 1, post(b"Content-Length:\t5\r\n", b"hello")),
    ("CL leading zeros", "accept", 1, post(b"Content-Length: 005\r\n", b"hello")),
    # Obfuscated Transfer-Encoding
    ("TE with extra OWS", "accept", 1, post(b"Transfer-Encoding:   chunked\r\n", b"0\r\n\r\n")),
    ("TE with tab", "accept", 1, post(b"Transfer-Encoding:\tchunked\r\n", b"0\r\n\r\n")),
    ("TE CHUNKED in capitals", "accept", 1, post(b"Transfer-Encoding: CHUNKED\r\n", b"0\r\n\r\n")),
    ("TE folded onto the next line", "reject", 0,
     post(b"Transfer-Encoding:\r\n chunked\r\n", b"0\r\n\r\n")),
    ("TE chunked, identity", "reject", 0,
     post(b"Transfer-Encoding: chunked, identity\r\n", b"0\r\n\r\n")),
    ("TE xchunked", "reject", 0, post(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n")),
    ("TE chunkedx", "reject", 0, post(b"Transfer-Encoding: chunkedx\r\n", b"0\r\n\r\n")),
    ("TE space before colon", "reject", 0,
     post(b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n")),
    ("TE tab before colon", "reject", 0,
     post(b"Transfer-Encoding\t: chunked\r\n", b"0\r\n\r\n")),
    ("TE vertical tab before value", "reject", 0,
     post(b"Transfer-Encoding:\x0bchunked\r\n", b"0\r\n\r\n")),
    ("TE vertical tab after value", "reject", 0,
     post(b"Transfer-Encoding: chunked\x0b\r\n", b"0\r\n\r\n")),
    ("TE form feed before value", "reject", 0,
     post(b"Transfer-Encoding:\x0cchunked\r\n", b"0\r\n\r\n")),
    ("TE twice", "reject", 0, post(CHUNKED + CHUNKED, b"0\r\n\r\n")),
    ("TE gzip, chunked (stricter than llhttp: we decode no other coding)", "reject", 0,
     post(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n")),
    ("TE chunked, chunked", "reject", 0,
     post(b"Transfer-Encoding: chunked, chunked\r\n", b"0\r\n\r\n")),
    # RFC 9112 6.1: TE in HTTP/1.0 is faulty framing; stricter than llhttp, which reads chunks.
    ("TE on HTTP/1.0 (RFC 9112 6.1, stricter than llhttp)", "reject", 0,
     post(CHUNKED, b"0\r\n\r\n", version=b"1.0")),
    # Line endings and header syntax
    ("bare LF line endings", "reject", 0, b"GET / HTTP/1.1\nHost: x\n\n"),
    ("bare LF after one header", "reject", 0, b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n"),
    ("bare LF ending the header block", "reject", 0, b"GET / HTTP/1.1\r\nHost: x\r\n\n"),
    ("bare CR inside a header line", "reject", 0, b"GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n"),
    ("bare LF ending the request line", "reject", 0, b"GET / HTTP/1.1\nHost: x\r\n\r\n"),
    ("obs-fold", "reject", 0, b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"),
    ("obs-fold with tab", "reject", 0, b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n"),
    ("space before colon", "reject", 0, b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
    ("space at the start of the first header", "reject", 0,
     b"GET / HTTP/1.1\r\n Host: x\r\n\r\n"),
    ("empty header name", "reject", 0, b"GET / HTTP/1.1\r\nHost: x\r\n: y\r\n\r\n"),
    ("NUL in header name", "reject", 0, b"GET / HTTP/1.1\r\nHost: x\r\nX-\x00A: y\r\n\r\n"),
    ("NUL in header value", "reject", 0, b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
    ("SOH in header value", "reject", 0, b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n"),
    ("ESC in header value", "reject", 0, b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x1bb\r\n\r\n"),
    ("control char in header name", "reject", 0,
     b"GET / HTTP/1.1\r\nHost: x\r\nX\x01A: y\r\n\r\n"),
    ("NUL in request target", "reject", 0, b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("control char in request target", "reject", 0, b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("NUL in method", "reject", 0, b"G\x00ET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("NUL after the version", "reject", 0, b"GET / HTTP/1.1\x00\r\nHost: x\r\n\r\n"),
    ("two spaces after the method", "reject", 0, b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("tab instead of space in request line", "reject", 0, b"GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("unknown method", "reject", 0, b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("lower-case method", "reject", 0, b"get / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("HTTP/1.2", "reject", 0, b"GET / HTTP/1.2\r\nHost: x\r\n\r\n"),
    ("lower-case protocol", "reject", 0, b"GET / http/1.1\r\nHost: x\r\n\r\n"),
    # Chunk sizes and extensions
    ("chunk size overflows 64 bits", "reject", 0,
     post(CHUNKED, b"10000000000000000\r\nhello\r\n0\r\n\r\n")),
    ("chunk size all f", "reject", 0, post(CHUNKED, b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n")),
    ("negative chunk size", "reject", 0, post(CHUNKED, b"-5\r\nhello\r\n0\r\n\r\n")),
    ("chunk size 0x5", "reject", 0, post(CHUNKED, b"0x5\r\nhello\r\n0\r\n\r\n")),
    ("chunk size with hex junk", "reject", 0, post(CHUNKED, b"5g\r\nhello\r\n0\r\n\r\n")),
    ("chunk size +5", "reject", 0, post(CHUNKED, b"+5\r\nhello\r\n0\r\n\r\n")),
    ("empty chunk size", "reject", 0, post(CHUNKED, b"\r\nhello\r\n0\r\n\r\n")),
    ("space before chunk size", "reject", 0, post(CHUNKED, b" 5\r\nhello\r\n0\r\n\r\n")),
    ("space after chunk size", "reject", 0, post(CHUNKED, b"5 \r\nhello\r\n0\r\n\r\n")),
    ("chunk size ended by bare LF", "reject", 0, post(CHUNKED, b"5\nhello\r\n0\r\n\r\n")),
    ("chunk extension without a name", "reject", 0, post(CHUNKED, b"5;\r\nhello\r\n0\r\n\r\n")),
    ("chunk extension with NUL", "reject", 0, post(CHUNKED, b"5;a=\x00\r\nhello\r\n0\r\n\r\n")),
    ("chunk extension with bare CR", "reject", 0,
     post(CHUNKED, b"5;a=b\rc\r\nhello\r\n0\r\n\r\n")),
    ("chunk extension value with a space", "reject", 0,
     post(CHUNKED, b"5;a=b c\r\nhello\r\n0\r\n\r\n")),
    ("chunk extension, unterminated quote", "reject", 0,
     post(CHUNKED, b"5;a=\"b\r\nhello\r\n0\r\n\r\n")),
    ("chunk extension token", "accept", 1, post(CHUNKED, b"5;a=b\r\nhello\r\n0\r\n\r\n")),
    ("chunk extension quoted", "accept", 1, post(CHUNKED, b"5;a=\"b c\"\r\nhello\r\n0\r\n\r\n")),
    ("chunk data not followed by CRLF", "reject", 0, post(CHUNKED, b"5\r\nhelloX\r\n0\r\n\r\n")),
    ("chunk data followed straight by the next size", "reject", 0,
     post(CHUNKED, b"5\r\nhello0\r\n\r\n")),
    ("chunk data followed by bare LF", "reject", 0, post(CHUNKED, b"5\r\nhello\n0\r\n\r\n")),
    ("last chunk without the final CRLF, then a request", "reject", 0,
     post(CHUNKED, b"0\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")),
    ("trailer with bare LF", "reject", 0, post(CHUNKED, b"0\r\nX-T: a\n\r\n")),
    # Well-framed controls: these must pass untouched.
    ("chunked body", "accept", 1, post(CHUNKED, b"5\r\nhello\r\n0\r\n\r\n")),
    ("chunked body with trailer", "accept", 1, post(CHUNKED, b"5\r\nhello\r\n0\r\nX-T: a\r\n\r\n")),
    ("pipelined: Content-Length body, then GET", "accept", 2,
     post(b"Content-Length: 5\r\n", b"hello") + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("pipelined: chunked body, then GET", "accept", 2,
     post(CHUNKED, b"5\r\nhello\r\n0\r\n\r\n") + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("pipelined: three GETs", "accept", 3, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3),
    ("pipelined: GET, then a smuggled CL+TE request", "reject", 1,
     b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + post(b"Content-Length: 5\r\n" + CHUNKED, b"0\r\n\r\n")),
]


def smuggling_cases():
    return [Case("smuggling", name, data, expected, count)
            for name, expected, count, data in SMUGGLING]


# ---------------------------------------------------------------------------------------------
# Talking to the listener

def exchange(host, port, case, patience):
    """Sends the case and returns (answers, closed): the statuses of the final answers read, and
    whether the server closed. Reads until close, or until it has been quiet for `patience`."""
    answers = []
    buffer = b""
    closed = False
    with socket.create_connection((host, port), timeout=5) as conn:
        try:
            conn.sendall(case.data)
            if case.half_close:
                conn.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.monotonic() + patience
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            conn.settimeout(left)
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            buffer += chunk
            buffer = take_answers(buffer, answers)
            # Once an answer is in, more come promptly or not at all.
            deadline = time.monotonic() + min(patience, 0.3)
    if buffer:
        answers.append("junk")
    return answers, closed


def take_answers(buffer, answers):
    """Moves whole responses off the front of `buffer` into `answers` (1xx are skipped)."""
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return buffer
        head = buffer[:end].decode("latin-1").split("\r\n")
        parts = head[0].split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            answers.append("junk")
            return b""
        length = 0
        for field in head[1:]:
            name, _, value = field.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if len(buffer) < end + 4 + length:
            return buffer
        buffer = buffer[end + 4 + length:]
        code = int(parts[1])
        if code >= 200:
            answers.append(code)


def verdict(case, answers, closed):
    """(passed, explanation) for one case."""
    k = case.count
    accepted = [a for a in answers[:k] if a != "junk" and a not in REFUSALS]
    if len(accepted) < k:
        return False, "expected %d accepted answer(s) first" % k
    rest = answers[k:]
    if case.expected == "accept":
        if rest:
            return False, "more answers than requests"
        return True, ""
    if case.expected == "upgrade":
        return True, ""
    if case.expected == "truncated":
        if not closed or any(a not in REFUSALS for a in rest):
            return False, "expected a close, at most with a refusal"
        return True, ""
    # reject
    if not closed:
        return False, "connection left open"
    if len(rest) > 1 or any(a not in REFUSALS for a in rest):
        return False, "answered what should be refused"
    return True, ""


def describe(answers, closed):
    words = [str(a) for a in answers] or ["no answer"]
    return " ".join(words) + (", closed" if closed else ", open")


def run_case(host, port, case, patience):
    answers, closed = exchange(host, port, case, patience)
    passed, why = verdict(case, answers, closed)
    return describe(answers, closed), passed, why


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--vectors", help="folder holding llhttp/ (default: see find_vectors)")
    parser.add_argument("--jobs", type=int, default=8, help="cases run at once")
    parser.add_argument("--patience", type=float, default=2.0,
                        help="seconds to wait for a first answer or a close")
    parser.add_argument("--only", help="run only cases whose source or name contains this")
    parser.add_argument("--list", action="store_true", help="print the cases and expectations")
    args = parser.parse_args()

    try:
        cases = load_corpus(find_vectors(args.vectors)) + smuggling_cases()
    except (OSError, ValueError) as error:
        print("http_replay: %s" % error, file=sys.stderr)
        return 2
    if args.only:
        cases = [c for c in cases if args.only in c.source or args.only in c.name]
    if args.list:
        for case in cases:
            print("%-32s %-60s %-12s %r" % (case.source, case.name[:60], case.expectation(),
                                            case.data[:120]))
        return 0

    runnable = [c for c in cases if c.expected != "skip"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = dict(zip(map(id, runnable), pool.map(
            lambda c: run_case(args.host, args.port, c, args.patience), runnable)))

    passed = failed = skipped = 0
    print("%-28s | %-60s | %-10s | %-24s | %s" % ("source", "case", "expected", "got", "verdict"))
    for case in cases:
        if case.expected == "skip":
            skipped += 1
            print("%-28s | %-60s | %-10s | %-24s | skip: %s" % (
                case.source, case.name[:60], "-", "-", case.skip))
            continue
        got, ok, why = results[id(case)]
        passed += ok
        failed += not ok
        print("%-28s | %-60s | %-10s | %-24s | %s" % (
            case.source, case.name[:60], case.expectation(), got,
            "pass" if ok else "FAIL: " + why))
    print("totals: cases %d, passed %d, failed %d, skipped %d" % (len(cases), passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
