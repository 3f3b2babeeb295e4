"""A tiny service played as a container: `app.py --version TAG --port PORT`.

GET /health -> {"status": "ok", "version": TAG} (HTTP 500 when TAG starts with "sick"); GET /env/NAME -> that
variable of its environment. A TAG starting with "crash" exits at once with code 3. It logs as uvicorn does: its start
and each request at INFO, a sick answer at ERROR (`ERROR:    ...`).
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

version = sys.argv[sys.argv.index("--version") + 1]
port = int(sys.argv[sys.argv.index("--port") + 1])
if version.startswith("crash"):
    print(f"{version}: this build does not start", flush=True)
    sys.exit(3)
print(f"INFO:     Uvicorn running on http://127.0.0.1:{port} (Press CTRL+C to quit)", flush=True)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            status, body = (500 if version.startswith("sick") else 200), {"status": "ok", "version": version}
            if status == 500:
                print(f"ERROR:    Exception in ASGI application: {version} cannot answer /health", flush=True)
        elif self.path.startswith("/env/"):
            status, body = 200, {"value": os.environ.get(self.path.removeprefix("/env/"))}
        else:
            status, body = 404, {"error": "not found"}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        print(f'INFO:     {self.client_address[0]}:{self.client_address[1]} - "{self.requestline}" {code}', flush=True)


HTTPServer(("127.0.0.1", port), Handler).serve_forever()
