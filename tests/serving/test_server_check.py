"""alm-predict --server checks the server before it reads an image: one line,
no progress bar, no output folder."""

from __future__ import annotations

import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from alm_tf.serving import client
from alm_tf.testing import mini_model as ph
from tests.cli_helpers import run_main


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "images").mkdir()
    for i, image in enumerate(ph.images(3, image_size=(80, 40)).astype(np.uint8)):
        Image.fromarray(image).save(tmp_path / "images" / f"p{i}.png")
    (tmp_path / "attributes.txt").write_text("".join(f"{a}\n" for a in ph.ATTRIBUTES))
    return tmp_path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _NotFound(BaseHTTPRequestHandler):
    """A REST server without the model: every model status is 404 (as TF Serving answers)."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = b'{"error": "Servable not found"}'
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _predict(server, inputs):
    return run_main("pipelines.predict", [
        f"--server={server}", f"--attributes_file={inputs / 'attributes.txt'}",
        f"--images={inputs / 'images'}", f"--output_dir={inputs / 'out'}"], "alm-predict")


@pytest.mark.parametrize("scheme, needle", [("", "no gRPC server answered within 0.5 s"),
                                            ("http://", "cannot reach the REST server")])
def test_unreachable_server_is_one_line_before_any_progress(inputs, monkeypatch, scheme, needle):
    monkeypatch.setattr(client, "CONNECT_TIMEOUT_S", 0.5)
    server = f"{scheme}127.0.0.1:{_closed_port()}"
    code, out, err = _predict(server, inputs)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err  # no progress bar before the error
    assert lines[0].startswith(f"alm-predict: error: TF Serving at {server}: {needle}"), err
    assert not out and not (inputs / "out").exists()
    assert not [n for n in os.listdir(inputs) if n.startswith(".")]


def test_rest_server_without_the_model_is_refused_by_name(inputs):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        code, _, err = _predict(f"http://127.0.0.1:{httpd.server_address[1]}", inputs)
    finally:
        httpd.shutdown()
        httpd.server_close()
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "no model 'alm' on the server (HTTP 404)" in lines[0], err
    assert not (inputs / "out").exists()
