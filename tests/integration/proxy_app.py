"""proxy_app.py - the web application of the proxy tests: posts kept in
SQLite on the ltxfs mount, served by Python's http.server.

    python3 proxy_app.py PORT DB_PATH NAME

    POST /posts          body: the post's text; 201 {"id": N}
    GET  /posts          200 [[id, text], ...]
    GET  /static/NAME    200 bytes (a static file: the proxy passes it through)
    POST /upload         the body is read whole; 200 {"bytes": N, "sha256": HEX}
    GET  /ws             a WebSocket-style upgrade: 101, then every byte echoed
    GET  /events         server-sent events: three "data: N" lines, then the end

Every answer says which node served it (X-Served-By: NAME).
"""

import base64
import hashlib
import http.server
import json
import socketserver
import sqlite3
import sys


class App(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True     # one answer, one segment: no delayed-ACK stall
    wbufsize = 1 << 16                 # the head and the body leave together

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Served-By", NAME)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def db(self):
        c = sqlite3.connect(DB_PATH, timeout=30, isolation_level=None)
        c.execute("PRAGMA busy_timeout=30000")
        return c

    def do_POST(self):
        if self.path == "/posts":
            text = self.body().decode()
            c = self.db()
            try:
                cur = c.execute("INSERT INTO posts(text) VALUES (?)", (text,))
                self.reply(201, {"id": cur.lastrowid})
            except sqlite3.Error as e:
                self.reply(500, {"error": str(e)})
            finally:
                c.close()
        elif self.path == "/upload":
            h = hashlib.sha256()
            n = 0
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = self.body()
                h.update(data)
                n = len(data)
            else:
                left = int(self.headers.get("Content-Length", "0"))
                while left:
                    chunk = self.rfile.read(min(left, 1 << 20))
                    h.update(chunk)
                    n += len(chunk)
                    left -= len(chunk)
            self.reply(200, {"bytes": n, "sha256": h.hexdigest()})
        else:
            self.reply(404, {"error": "no such path"})

    do_PUT = do_POST

    def do_GET(self):
        if self.path == "/posts":
            c = self.db()
            try:
                rows = c.execute("SELECT id, text FROM posts ORDER BY id").fetchall()
                self.reply(200, rows)
            except sqlite3.Error as e:
                self.reply(500, {"error": str(e)})
            finally:
                c.close()
        elif self.path.startswith("/static/"):
            self.reply(200, b"static " + self.path.encode(), "application/octet-stream")
        elif self.path == "/ws":
            key = self.headers.get("Sec-WebSocket-Key", "")
            accept = base64.b64encode(hashlib.sha1(
                (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept)
            self.send_header("X-Served-By", NAME)
            self.end_headers()
            self.wfile.flush()
            while True:
                data = self.connection.recv(65536)
                if not data:
                    break
                self.connection.sendall(data)
            self.close_connection = True
        elif self.path == "/events":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("X-Served-By", NAME)
            self.send_header("Connection", "close")
            self.end_headers()
            for i in range(3):
                self.wfile.write(b"data: %d\n\n" % i)
                self.wfile.flush()
            self.close_connection = True
        else:
            self.reply(404, {"error": "no such path"})

    do_HEAD = do_GET


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    PORT, DB_PATH, NAME = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    Server(("127.0.0.1", PORT), App).serve_forever()
